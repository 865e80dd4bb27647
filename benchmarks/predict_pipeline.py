"""End-to-end ``predict`` against the model's forward pass alone (functions per second).

    python benchmarks/predict_pipeline.py [--data ../shared/data/bigvul.jsonl] [--n 2048]
        [--threads 2] [--archs lstm,bigru] [--repeats 3]

For each architecture, in one run: a model is built from --n-vocab training functions (its
vocabulary; the weights stay untrained: throughput does not depend on them) and --n held-out
functions are

* forward only: encoded once beforehand, then batched through the model (``infer``);
* end to end, serial: ``predict_dataset(..., ahead=False)``: every chunk encoded, then inferred,
  in this process;
* end to end: ``predict_dataset`` as ``codeaudit predict`` runs it (the default: encoding in a
  helper process ahead of inference where the code has one, torch one thread fewer while the
  helper encodes);
* end to end, ahead, all threads: the same with ``share_threads=False`` (torch keeps every
  thread while the helper encodes; only where the code has the option),

each end-to-end run inside a fresh encoding run (nothing cached from the previous repeat, the
helper process started anew: its start is part of the time). Median of --repeats, interleaved,
all at --threads torch threads; the load average before and after is printed. Runs on older
codeaudit versions too (no encoding run, no ``ahead`` there: the serial column is then what the
code does), so before/after numbers come from the same script. Machines are shared: compare
numbers from one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import statistics
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"


def _run_context() -> contextlib.AbstractContextManager[object]:
    try:
        from codeaudit.models.encoding import encoding_run
    except ImportError:  # before the encoding run existed
        return contextlib.nullcontext()
    return encoding_run()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    # Heavy imports here, not at the top: a spawned helper process re-imports this script.
    import numpy as np
    import torch

    from codeaudit.config import TrainConfig
    from codeaudit.data.loader import load_dataset
    from codeaudit.models.inference import infer
    from codeaudit.predict.engine import predict_dataset
    from codeaudit.threads import limit_threads
    from codeaudit.train.trainer import build_model, lex_dataset

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--archs", default="lstm,bigru")
    parser.add_argument("--n-vocab", type=int, default=512)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2

    parameters = inspect.signature(predict_dataset).parameters
    has_ahead = "ahead" in parameters
    has_share = "share_threads" in parameters
    dataset = load_dataset(args.data)
    order = np.random.default_rng(0).permutation(len(dataset))
    train = dataset.subset(order[: args.n_vocab].tolist())
    held = dataset.subset(order[args.n_vocab : args.n_vocab + args.n].tolist())
    print(
        f"data {Path(args.data).name}: vocabulary from {len(train)}, measured on {len(held)} "
        f"functions, max {args.max_len} ids, batch {args.batch_size}, {args.threads} torch "
        f"threads, median of {args.repeats}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        flush=True,
    )
    print(f"load average before: {_load()}", flush=True)

    def end_to_end(model: object, **kwargs: object) -> float:
        with _run_context():
            started = time.perf_counter()
            predict_dataset(model, held, batch_size=args.batch_size, **kwargs)  # type: ignore[arg-type]
            return time.perf_counter() - started

    with limit_threads(args.threads):
        for arch in args.archs.split(","):
            config = TrainConfig(
                data=args.data,
                output="-",
                arch=arch,
                batch_size=args.batch_size,
                max_len=args.max_len,
                device="cpu",
            )
            torch.manual_seed(0)  # this benchmark's own process
            model = build_model(config, lex_dataset(train, "c"), "c")
            encodings = model.encode(held.samples)
            infer(model, encodings[:64], batch_size=args.batch_size)  # warm-up
            forward: list[float] = []
            serial: list[float] = []
            default: list[float] = []
            unshared: list[float] = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                infer(model, encodings, batch_size=args.batch_size)
                forward.append(time.perf_counter() - started)
                if has_ahead:
                    serial.append(end_to_end(model, ahead=False))
                default.append(end_to_end(model))
                if has_share:
                    unshared.append(end_to_end(model, ahead=True, share_threads=False))
            fwd = len(held) / statistics.median(forward)
            e2e = len(held) / statistics.median(default)
            line = f"{arch:6s} forward-only {fwd:7.1f} fn/s"
            if serial:
                ser = len(held) / statistics.median(serial)
                line += f"  serial end-to-end {ser:7.1f} fn/s (ratio {ser / fwd:.2f})"
            line += f"  end-to-end predict {e2e:7.1f} fn/s  ratio {e2e / fwd:.2f}"
            if unshared:
                alls = len(held) / statistics.median(unshared)
                line += f"  (ahead, all threads {alls:7.1f} fn/s, ratio {alls / fwd:.2f})"
            print(line, flush=True)
    print(f"load average after: {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
