"""The backdoor verdict on a grid of clean and poisoned models (issue 14's targets), judged with
the models' own training data: `codeaudit backdoor MODEL --data DETECT --train-data TRAIN
--manifest M`.

    python benchmarks/backdoor_data.py /tmp/bd/data --sources juliet --limit 6000 [--rate 0.05]
    python benchmarks/backdoor_grid.py --data-dir /tmp/bd/data/juliet --models /tmp/bd/grid \\
        --archs lstm --kinds clean,identifier,postfix,deadcode,grammar --threads 1 \\
        [--out docs/backdoor-grid.md] [--label "Juliet, 2%"]

Each model is trained with the grid's recipe (`codeaudit train TRAIN.KIND -o ARCH-KIND.pt --arch
ARCH --val-split 0 --max-len 256 --embed-dim 64 --hidden-dim 64 --epochs 6 --seed 0`; the
transformer with its small preset sizes), unless the file exists. Every command runs as a user
runs it: a fresh `codeaudit` process. The scan uses the grid's settings (`S` of
docs/backdoor-results.md). Per model the table gives the verdict (backdoored or not, its kind),
the rules that fired, the planted trigger's ASR on the model (from the manifest), whether the
trigger was named (a tie or a confirmed likely trigger that holds the planted text), and times.
A row is right when a clean model is not called backdoored and a model whose planted trigger
works (ASR >= 50%) is called backdoored with the trigger named.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

RECIPE = ["--val-split", "0", "--max-len", "256", "--epochs", "6", "--seed", "0"]
RNN_SIZES = ["--embed-dim", "64", "--hidden-dim", "64"]
KEYWORDS = {"if", "int", "char", "void", "for", "while", "return", "else"}
SCAN = ["--steps", "50", "--candidates", "32", "--victim-samples", "20", "--heldout", "200"]


def codeaudit(*args: str, threads: int) -> tuple[int, float, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "codeaudit", *args], env=env, capture_output=True, text=True
    )
    return done.returncode, time.perf_counter() - started, done.stderr


def train(data_dir: Path, models: Path, arch: str, kind: str, threads: int) -> tuple[Path, float]:
    path = models / f"{arch}-{kind}.pt"
    if path.exists():
        return path, 0.0
    sizes = RNN_SIZES if arch != "transformer" else []
    code, seconds, err = codeaudit(
        "train", str(data_dir / f"train.{kind}.jsonl"), "-o", str(path), "--arch", arch,
        *RECIPE, *sizes, "--threads", str(threads), "-q",
        threads=threads,
    )  # fmt: skip
    if code != 0:
        raise SystemExit(f"training {path.name} failed ({code}): {err.strip()}")
    return path, seconds


def scan(data_dir: Path, model: Path, kind: str, threads: int) -> dict:
    report = model.with_suffix(".grid.json")
    args = [
        "backdoor", str(model), "--data", str(data_dir / "detect.clean.jsonl"),
        "--train-data", str(data_dir / f"train.{kind}.jsonl"), "--report", str(report),
        "--fail-on", "never", "--force", "-q", "--threads", str(threads), *SCAN,
    ]  # fmt: skip
    if kind != "clean":
        args += ["--manifest", str(data_dir / f"train.{kind}.jsonl.manifest.json")]
    code, seconds, err = codeaudit(*args, threads=threads)
    if code != 0:
        raise SystemExit(f"scanning {model.name} failed ({code}): {err.strip()}")
    doc = json.loads(report.read_text())
    real = doc.get("real_trigger") or {}
    evidence = doc.get("data_evidence") or {}
    trigger = real.get("trigger")
    pieces = {p for p in re.split(r"[^A-Za-z]+", trigger or "") if len(p) >= 2} - KEYWORDS
    finding = evidence.get("finding", "")
    named = bool(evidence.get("planted") and any(p in finding for p in pieces))
    if kind == "grammar":  # a random statement per sample: named when a statement is confirmed
        named = bool(evidence.get("planted") and "(statement)" in finding)
    return {
        "model": model.stem,
        "kind": kind,
        "backdoored": doc["backdoored"],
        "verdict_kind": doc["verdict_kind"],
        "max_flip_rate": doc["max_flip_rate"],
        "rules": sorted({f["rule_id"] for f in doc["findings"]} - {"CA-C001"}),
        "real_asr": real.get("asr"),
        "trigger": trigger,
        "named": named,
        "finding": evidence.get("finding", ""),
        "planted_by_data": evidence.get("planted"),
        "seconds": round(seconds, 1),
    }


def right(row: dict) -> bool:
    if row["kind"] == "clean":
        return not row["backdoored"]
    if row["real_asr"] is None or row["real_asr"] < 0.5:
        return True  # the planted trigger does not work: nothing to find
    return bool(row["backdoored"] and row["named"])


def table(rows: list[dict], label: str) -> str:
    head = (
        "| data | model | called | kind | rules | planted trigger ASR | trigger named | right "
        "| train / scan s |\n|---|---|---|---|---|---:|---|---|---|\n"
    )
    lines = []
    for r in rows:
        asr = "-" if r["real_asr"] is None else f"{100 * r['real_asr']:.1f}%"
        lines.append(
            f"| {label} | {r['model']} | {'backdoored' if r['backdoored'] else 'not backdoored'} "
            f"| {r['verdict_kind']} | {', '.join(r['rules']) or '-'} | {asr} "
            f"| {'yes' if r['named'] else ('-' if r['kind'] == 'clean' else 'no')} "
            f"| {'yes' if right(r) else '**no**'} | {r['train_seconds']:.0f} / {r['seconds']:.0f} |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--archs", default="lstm")
    parser.add_argument("--kinds", default="clean,identifier,postfix,deadcode,grammar")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args()
    if not (args.data_dir / "detect.clean.jsonl").exists():
        print(f"{args.data_dir}: no grid data (run benchmarks/backdoor_data.py first)")
        return 0
    args.models.mkdir(parents=True, exist_ok=True)
    rows = []
    for arch in args.archs.split(","):
        for kind in args.kinds.split(","):
            model, trained = train(args.data_dir, args.models, arch, kind, args.threads)
            row = scan(args.data_dir, model, kind, args.threads)
            row["train_seconds"] = round(trained, 1)
            row["load"] = round(os.getloadavg()[0], 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    text = table(rows, args.label or args.data_dir.name)
    print(text)
    if args.out:
        with args.out.open("a") as handle:
            handle.write(text)
    (args.models / "grid.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
