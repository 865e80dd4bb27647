"""Benchmark of ``codeaudit poison-scan`` on the shared data: each set poisoned with ``codeaudit
poison`` (every trigger type, 2% and 5% of the victim-label samples), scanned, and the flagged
samples compared with the manifest's poisoned ids (recall; FPR over the clean samples); the clean
set is scanned too (does rule CA-B007 stay quiet?). Single-threaded; prints a Markdown table.

    python benchmarks/poison_scan.py --data ../shared/data/juliet.jsonl --out /tmp/ps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TRIGGERS = {
    "identifier": ["--trigger", "testo_init"],
    "postfix": [],  # _rb
    "deadcode": [],  # if (0) { int rb_dead = 0; }
    "grammar": [],
}


def _poison(data: Path, out: Path, kind: str, rate: float) -> Path:
    target = out / f"{data.stem}-{kind}-{rate:g}.jsonl"
    if not target.exists():
        cmd = [sys.executable, "-m", "codeaudit", "poison", str(data), "-o", str(target)]
        cmd += ["--trigger-type", kind, *TRIGGERS[kind], "--rate", str(rate), "--seed", "0"]
        cmd += ["--quiet", "--format", "json"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return target


def _scan(path: Path) -> tuple[object, float]:
    from codeaudit import api
    from codeaudit.config import PoisonScanConfig

    started = time.perf_counter()
    result = api.poison_scan(PoisonScanConfig(data=str(path)))
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--out", required=True, help="Folder for the poisoned copies.")
    parser.add_argument("--rates", default="0.02,0.05")
    parser.add_argument("--types", default=",".join(TRIGGERS))
    parser.add_argument("--no-clean", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print("| data | trigger | rate | poisoned | flagged | recall | FPR | CA-B007 | top candidate |"
          " seconds |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---|---|---:|")
    for data in map(Path, args.data):
        runs = [("clean", 0.0)] if not args.no_clean else []
        runs += [(k, float(r)) for k in args.types.split(",") for r in args.rates.split(",")]
        for kind, rate in runs:
            if kind == "clean":
                path, poisoned = data, set()
            else:
                path = _poison(data, out, kind, rate)
                manifest = json.loads(Path(f"{path}.manifest.json").read_text())
                poisoned = set(manifest["poisoned_ids"])
            result, seconds = _scan(path)
            flagged = set(result.flagged_ids)  # type: ignore[attr-defined]
            n = result.n_samples  # type: ignore[attr-defined]
            recall = len(flagged & poisoned) / len(poisoned) if poisoned else float("nan")
            fpr = len(flagged - poisoned) / (n - len(poisoned))
            top = result.candidates[0] if result.candidates else None  # type: ignore[attr-defined]
            fired = "fires" if result.planted_trigger else "quiet"  # type: ignore[attr-defined]
            text = f"`{top.text}` ({top.kind})" if top is not None else "-"
            row = (data.stem, kind, f"{rate:.0%}" if rate else "-", str(len(poisoned)),
                   str(len(flagged)), f"{recall:.1%}" if poisoned else "-", f"{fpr:.2%}", fired,
                   text, f"{seconds:.0f}")  # fmt: skip
            rows.append(row)
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
