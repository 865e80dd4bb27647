"""Reference models (LiRA/RMIA) on each executor: the serial loop, a local pool of 2 worker
processes, and a local Ray cluster with 2 CPUs, for the same 8 models.

    python benchmarks/references.py [--models 8] [--repeats 3] [--candidates 400]
        [--epochs 2] [--out docs/distributed.md]

The work is what ``codeaudit membership --references 8`` does after loading: 8 LSTMs (embedding
and hidden size 64, max_len 256, the recipe below), each on half of the candidates, then each
one's outputs on every candidate. Candidates: ``../shared/data/juliet.jsonl`` when present (the
first --candidates records), else the synthetic functions of ``examples/make_dataset.py``. Every
model uses one torch thread (the serial loop runs under ``limit_threads(1)``, workers get
``--cpus-per-model 1``), so the ratio is the parallelism alone. The Ray time includes starting
and stopping the local cluster (the run does both when no cluster is given). The three settings
run interleaved (each once per round) and the outputs are checked byte-identical to the serial
run's; medians over --repeats rounds. Compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "juliet.jsonl"


def candidates(n: int):  # type: ignore[no-untyped-def]
    from codeaudit.data.samples import Dataset, Sample

    if SHARED.is_file():
        records = []
        with SHARED.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if record.get("func") and record.get("target") in (0, 1):
                    records.append(record)
                if len(records) == n:
                    break
        source = "../shared/data/juliet.jsonl"
    else:
        from codeaudit.data.synthetic import generate

        records, source = generate(n, seed=11), "synthetic (examples/make_dataset.py)"
    samples = tuple(
        Sample(id=str(r.get("id", i)), code=r["func"], label=int(r["target"]), lang="c")
        for i, r in enumerate(records)
    )
    return Dataset(samples=samples), source


def recipe(epochs: int):  # type: ignore[no-untyped-def]
    from codeaudit.config import TrainConfig

    return TrainConfig(
        data="-", output="-", arch="lstm", epochs=epochs, lr=2e-3, batch_size=32, max_len=256,
        embed_dim=64, hidden_dim=64, num_layers=1, min_freq=1, val_split=0.0, device="cpu",
    )  # fmt: skip


def fingerprint(outputs) -> bytes:  # type: ignore[no-untyped-def]
    from codeaudit.membership.features import FeatureSet

    parts = []
    for features in outputs.features:
        for item in fields(FeatureSet):
            value = getattr(features, item.name)
            parts.append(value.tobytes() if hasattr(value, "tobytes") else repr(value).encode())
    return b"".join(parts)


def startup(settings: dict, repeats: int) -> dict[str, list[float]]:  # type: ignore[type-arg]
    import operator

    found: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(repeats):
        for name, executor in settings.items():
            started = time.perf_counter()
            assert executor.map(operator.add, [0, 1], shared=0) == [0, 1]
            found[name].append(time.perf_counter() - started)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from codeaudit.executor import LocalExecutor, RayExecutor, Resources
    from codeaudit.membership.references import train_references
    from codeaudit.threads import limit_threads

    data, source = candidates(args.candidates)
    train = recipe(args.epochs)
    settings = {
        "serial (1 worker)": LocalExecutor(Resources(workers=1)),
        "local, 2 workers": LocalExecutor(Resources(workers=2)),
        "ray (local cluster, 2 CPUs)": RayExecutor(Resources(workers=2)),
    }
    try:
        import ray  # noqa: F401
    except ImportError:
        del settings["ray (local cluster, 2 CPUs)"]
    times: dict[str, list[float]] = {name: [] for name in settings}
    reference: bytes | None = None
    load = os.getloadavg()[0]
    for round_ in range(args.repeats):
        for name, executor in settings.items():
            started = time.perf_counter()
            with limit_threads(1):
                outputs = train_references(
                    data, train, args.models, seed=0, default_lang="c", executor=executor
                )
            times[name].append(time.perf_counter() - started)
            sys.stderr.write(f"round {round_ + 1} {name}: {times[name][-1]:.1f} s\n")
            found = fingerprint(outputs)
            reference = reference or found
            if found != reference:
                raise SystemExit(f"{name}: outputs differ from the serial run")
    serial = statistics.median(times["serial (1 worker)"])
    lines = [
        f"{args.models} LSTM reference models (64/64, max_len 256, {args.epochs} epochs) on "
        f"{len(data)} candidates from {source}; 1 torch thread per model; "
        f"{args.repeats} interleaved rounds, median; {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the start; Python {platform.python_version()}.",
        "",
        "| executor | seconds (median) | all rounds | speedup over serial |",
        "|---|---:|---|---:|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {name} | {median:.1f} | {rounds} | {serial / median:.2f}x |")
    lines.append("")
    lines.append("Outputs byte-identical to the serial run in every round: yes.")
    lines.append("")
    lines.append(
        "Start cost (2 tasks that do nothing, so the time is starting the workers, importing "
        "torch in them, and for Ray starting and stopping the cluster; median of the rounds): "
        + "; ".join(
            f"{name} {statistics.median(v):.1f} s"
            for name, v in startup(settings, args.repeats).items()
        )
        + "."
    )
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
