"""Thread count against wall time: ``--threads auto`` (the default) against 1 and 2 threads, on
an idle machine and next to other work.

    python benchmarks/threads.py [--repeats 5] [--epochs 2] [--out TABLE.md]

Results and what they show: docs/threads.md.

The work is what a user runs, each in a fresh ``codeaudit`` process: ``train`` (BiGRU,
--epochs, on the example data set ``examples/make_dataset.py`` makes: 1,200 training and 400
validation functions) and then ``membership`` of that model (1,200 members, 400 non-members,
default attacks). "Other work" is N processes that keep one CPU each busy (a Python loop),
started before the commands and stopped after; N = 0 is the idle machine. The settings run
interleaved (every setting once per round), so drift in the machine's own load spreads over all
of them; medians over --repeats rounds. Each row says which thread count ``auto`` picked.
Run by hand; compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spin() -> None:  # pragma: no cover - the other work
    while True:
        pass


def codeaudit(*args: str) -> dict:
    command = [sys.executable, "-m", "codeaudit", *args, "-q", "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def run_once(data: Path, work: Path, threads: str, epochs: int) -> tuple[float, float, int]:
    """Seconds for train and for membership, and the thread count the run used."""
    model = work / f"model-{threads}.pt"
    started = time.perf_counter()
    report = codeaudit(
        "train", str(data / "train.jsonl"), "--val", str(data / "val.jsonl"),
        "--epochs", str(epochs), "--seed", "0", "-o", str(model), "--force",
        "--threads", threads,
    )  # fmt: skip
    trained = time.perf_counter() - started
    started = time.perf_counter()
    codeaudit(
        "membership", str(model), "--members", str(data / "train.jsonl"),
        "--nonmembers", str(data / "holdout.jsonl"), "--fail-on", "never",
        "--threads", threads,
    )  # fmt: skip
    return trained, time.perf_counter() - started, int(report["threads"]["count"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--loads", default="0,1,2", help="busy processes per scenario")
    parser.add_argument("--settings", default="auto,1,2")
    parser.add_argument("--out", help="also write a Markdown table here")
    args = parser.parse_args()
    env_threads = os.environ.pop("OMP_NUM_THREADS", None)
    if env_threads:
        print(f"ignoring OMP_NUM_THREADS={env_threads} for the runs", file=sys.stderr)
    import multiprocessing

    import torch

    settings = args.settings.split(",")
    loads = [int(n) for n in args.loads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "make_dataset.py"), str(data), "--n", "2000",
             "--seed", "0", "--force"],
            check=True, capture_output=True,
        )  # fmt: skip
        for busy in loads:
            spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
            for process in spinners:
                process.start()
            time.sleep(2)
            try:
                times: dict[str, list[tuple[float, float, int]]] = {s: [] for s in settings}
                for round_ in range(args.repeats):
                    for setting in settings:
                        times[setting].append(run_once(data, work, setting, args.epochs))
                        print(busy, round_, setting, times[setting][-1], file=sys.stderr)
            finally:
                for process in spinners:
                    process.terminate()
                    process.join()
            for setting in settings:
                train = statistics.median(t[0] for t in times[setting])
                audit = statistics.median(t[1] for t in times[setting])
                used = sorted({t[2] for t in times[setting]})
                rows.append((busy, setting, used, train, audit))
    header = (
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} in the affinity mask), "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__} (its default: "
        f"{torch.get_num_threads()} threads); BiGRU, {args.epochs} epochs; median of "
        f"{args.repeats}, interleaved."
    )
    lines = [
        header,
        "",
        "| other busy processes | --threads | threads used | train (s) | membership (s) | "
        "total (s) | total / best total |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for busy in loads:
        group = [r for r in rows if r[0] == busy]
        best = min(r[3] + r[4] for r in group)
        for _, setting, used, train, audit in group:
            total = train + audit
            lines.append(
                f"| {busy} | {setting} | {', '.join(map(str, used))} | {train:.1f} | "
                f"{audit:.1f} | {total:.1f} | {total / best:.2f} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
