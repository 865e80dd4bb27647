"""End-to-end ``predict`` against the model's forward pass alone (functions per second).

    python benchmarks/predict_pipeline.py [--data ../shared/data/bigvul.jsonl] [--n 2048]
        [--threads 2] [--archs lstm,bigru]

For each architecture, in one run: a model is built from --n-vocab training functions (its
vocabulary; the weights stay untrained: throughput does not depend on them) and --n held-out
functions are

* forward only: encoded once beforehand, then batched through the model (``infer``);
* end to end: ``predict_dataset`` (what ``codeaudit predict`` runs: encoding, then inference),
  inside a fresh encoding run each time (nothing cached from the previous repeat), encoded in
  --encode-workers processes (default 1, as the runner does; more only at PARALLEL_MIN functions).

Median of --repeats, both at --threads threads. Runs on older codeaudit versions too (no
encoding run there), so before/after numbers come from the same script. These machines are
shared: compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codeaudit.config import TrainConfig
from codeaudit.data.loader import load_dataset
from codeaudit.models.inference import infer
from codeaudit.predict.engine import predict_dataset
from codeaudit.threads import limit_threads
from codeaudit.train.trainer import build_model, lex_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"


def _run_context(workers: int) -> contextlib.AbstractContextManager[object]:
    try:
        from codeaudit.models.encoding import encoding_run
    except ImportError:  # before the encoding run existed
        return contextlib.nullcontext()
    return encoding_run(workers=workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--archs", default="lstm,bigru")
    parser.add_argument("--n-vocab", type=int, default=512)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--encode-workers",
        type=int,
        default=1,
        help="encoding processes (1: what codeaudit's runner uses today)",
    )
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2

    dataset = load_dataset(args.data)
    order = np.random.default_rng(0).permutation(len(dataset))
    train = dataset.subset(order[: args.n_vocab].tolist())
    held = dataset.subset(order[args.n_vocab : args.n_vocab + args.n].tolist())
    print(
        f"data {Path(args.data).name}: vocabulary from {len(train)}, measured on {len(held)} "
        f"functions, max {args.max_len} ids, batch {args.batch_size}, {args.threads} threads, "
        f"median of {args.repeats}",
        flush=True,
    )
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
            forward, end_to_end = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                infer(model, encodings, batch_size=args.batch_size)
                forward.append(time.perf_counter() - started)
                with _run_context(args.encode_workers):
                    started = time.perf_counter()
                    predict_dataset(model, held, batch_size=args.batch_size)
                    end_to_end.append(time.perf_counter() - started)
            fwd = len(held) / statistics.median(forward)
            e2e = len(held) / statistics.median(end_to_end)
            print(
                f"{arch:6s} forward-only {fwd:7.1f} fn/s  end-to-end predict {e2e:7.1f} fn/s  "
                f"ratio {e2e / fwd:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
