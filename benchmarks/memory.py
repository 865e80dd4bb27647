"""Peak memory of ``codeaudit membership`` and ``codeaudit predict`` against data set size.

    python benchmarks/memory.py [--sizes 1000,10000,30000,100000] [--source synthetic|bigvul]
        [--commands load,predict,membership] [--out docs/memory.md]

Each measurement is one fresh ``codeaudit`` process (the real entry point), and its peak
resident set size is read from the kernel when it exits (``os.wait4`` -> ``ru_maxrss``), so
nothing in the benchmark process itself is counted. The model is a tiny BiGRU (embedding 16,
hidden 16, max 128 ids) trained on 400 synthetic functions, so the runs finish; what grows with
the data is then the data, the features and the attack inputs, not the model.

Data: ``synthetic`` functions from :func:`codeaudit.data.synthetic.generate` (about 340 bytes
each), or real ``bigvul`` functions from ../shared/data replicated under fresh ids to reach each
size (about 2.4 KB each, the size of real functions). ``membership`` audits N functions (N/2
members, N/2 non-members; default attack settings: threshold and label-only attacks, logistic
regression on all 15 feature sets, 3 folds, 200 bootstrap replicates); ``predict`` predicts N
functions; ``load`` only reads the N-function file (``codeaudit.data.loader.load_dataset``) in a
process that imports what the commands import, to separate what holding the samples costs.

The table compares the growth of peak RSS between sizes with the size of the data file and of
the membership features themselves (logits, embeddings and the per-sample signals: what
``extract_features`` returns, ``N * (4 * (2 + D) + 33)`` bytes for embedding width D).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "memory"
BIGVUL = ROOT.parent / "shared" / "data" / "bigvul.jsonl"
TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "128", "--min-freq", "1"]
EMBED_WIDTH = 32  # a BiGRU's pooled vector: 2 directions x hidden 16
LOAD_PROBE = (
    "import sys, torch, sklearn, transformers\n"
    "from codeaudit.data.loader import load_dataset\n"
    "d = load_dataset(sys.argv[1])\n"
    "print(len(d))\n"
)


def run_measured(argv: list[str], cwd: Path) -> tuple[int, float, float]:
    """(exit code, peak RSS in MiB, CPU seconds) of one process. CPU time (user + system), not
    wall time: the machine may be shared, and memory is the point here."""
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = usage.ru_utime + usage.ru_stime
    if proc.returncode not in (0, 1):
        sys.stderr.write(err.decode("utf-8", "replace"))
        raise SystemExit(f"benchmark: {' '.join(argv[:3])} failed with {proc.returncode}")
    return proc.returncode, usage.ru_maxrss / 1024, seconds


def records(source: str, n: int, seed: int, bigvul: Path = BIGVUL) -> list[dict]:
    if source == "synthetic":
        from codeaudit.data.synthetic import generate

        out = generate(n, seed=seed)
        for i, record in enumerate(out):
            record["id"] = f"s{seed}-{i}"
        return out
    pool = [json.loads(line) for line in bigvul.read_text(encoding="utf-8").splitlines() if line]
    rng = random.Random(seed)
    return [
        {"id": f"b{seed}-{i}", "func": r["func"], "target": r["target"], "lang": "c"}
        for i, r in enumerate(rng.choice(pool) for _ in range(n))
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def feature_bytes(n: int) -> int:
    # logits 2 x f32, embeddings D x f32, labels i64, unk_rate f64, n_ids i64, truncated bool
    return n * (4 * (2 + EMBED_WIDTH) + 8 + 8 + 8 + 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,30000,100000")
    parser.add_argument("--source", choices=("synthetic", "bigvul"), default="synthetic")
    parser.add_argument("--bigvul", type=Path, default=BIGVUL, help="real functions to replicate")
    parser.add_argument("--commands", default="load,predict,membership")
    parser.add_argument("--out", help="write the Markdown table here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    if args.source == "bigvul" and not args.bigvul.is_file():
        print(f"benchmark: {args.bigvul}: not found", file=sys.stderr)
        return 2
    work = OUT / args.source
    work.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "codeaudit"]

    model = work / "model.pt"
    if not model.exists():
        write_jsonl(work / "train.jsonl", records("synthetic", 400, seed=99))
        argv = [*exe, "train", "train.jsonl", "-o", "model.pt", "--epochs", "2", "-q", *TINY]
        run_measured([*argv, "--val-split", "0", "--format", "json"], work)

    rows = []
    for n in sizes:
        data = records(args.source, n, seed=n, bigvul=args.bigvul)
        all_file = write_jsonl(work / f"all-{n}.jsonl", data)
        members = write_jsonl(work / f"members-{n}.jsonl", data[: n // 2])
        nonmembers = write_jsonl(work / f"nonmembers-{n}.jsonl", data[n // 2 :])
        del data
        row = {"n": n, "data_mb": all_file.stat().st_size / 2**20}
        row["features_mb"] = feature_bytes(n) / 2**20
        for command in commands:
            if command == "load":
                argv = [sys.executable, "-c", LOAD_PROBE, all_file.name]
            elif command == "predict":
                argv = [*exe, "predict", "model.pt", all_file.name, "-q", "--format", "json"]
            elif command == "membership":
                argv = [
                    *exe,
                    "membership",
                    "model.pt",
                    "--members",
                    members.name,
                    "--nonmembers",
                    nonmembers.name,
                    "-q",
                    "--format",
                    "json",
                ]
            else:
                raise SystemExit(f"benchmark: unknown command {command!r}")
            _, rss, seconds = run_measured(argv, work)
            row[f"{command}_rss"] = rss
            row[f"{command}_s"] = seconds
            print(f"n={n:>7} {command:<10} {rss:8.1f} MiB {seconds:7.1f} CPU s", flush=True)
        rows.append(row)
        for path in (all_file, members, nonmembers):
            path.unlink()

    lines = [
        "| functions | data file MiB | features MiB | "
        + " | ".join(f"{c}: peak RSS MiB (CPU s)" for c in commands)
        + " |",
        "| ---: | ---: | ---: | " + " | ".join("---:" for _ in commands) + " |",
    ]
    for row in rows:
        cells = [f"{row[f'{c}_rss']:.0f} ({row[f'{c}_s']:.0f})" for c in commands]
        lines.append(
            f"| {row['n']:,} | {row['data_mb']:.1f} | {row['features_mb']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        dn = last["n"] - first["n"]
        lines += [
            "",
            f"Growth from {first['n']:,} to {last['n']:,} functions, per function: data file "
            f"{(last['data_mb'] - first['data_mb']) * 2**20 / dn:.0f} B, features "
            f"{(last['features_mb'] - first['features_mb']) * 2**20 / dn:.0f} B, "
            + ", ".join(
                f"{c} peak RSS {(last[f'{c}_rss'] - first[f'{c}_rss']) * 2**20 / dn:.0f} B"
                for c in commands
            )
            + ".",
        ]
    header = [
        f"Measured with `python benchmarks/memory.py --sizes {args.sizes} --source {args.source}"
        f" --commands {','.join(commands)}` ({os.cpu_count()} CPU cores, {platform.machine()}, "
        f"Python {platform.python_version()}, {date.today().isoformat()}).",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
