"""Training and inference throughput (functions per second) for each architecture.

    python benchmarks/throughput.py [--data ../shared/data/bigvul.jsonl] [--out docs/throughput.md]

For each architecture: tokenisation (tree-sitter lexing plus the model tokenizer), one training
epoch over --n-train functions (median over --repeats epochs) and batched inference over
--n-infer functions (median over --repeats passes), all at --max-len ids. Run by hand; these
machines are shared, so compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codeaudit.config import TrainConfig
from codeaudit.data.loader import load_dataset
from codeaudit.models.inference import infer
from codeaudit.train.trainer import build_model, fit, lex_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--archs", default="lstm,bigru,transformer")
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-infer", type=int, default=1024)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write a Markdown table here")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2

    dataset = load_dataset(args.data)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(dataset))
    train = dataset.subset(order[: args.n_train].tolist())
    held = dataset.subset(order[args.n_train : args.n_train + args.n_infer].tolist())
    rows = []
    for arch in args.archs.split(","):
        config = TrainConfig(
            data=args.data,
            output="-",
            arch=arch,
            epochs=args.repeats,
            batch_size=args.batch_size,
            max_len=args.max_len,
            device="cpu",
        )
        torch.manual_seed(0)  # this benchmark's own process
        started = time.perf_counter()
        streams = lex_dataset(train, "c")
        model = build_model(config, streams, "c")
        encodings = [model.tokenizer.encode_tokens(s, model.max_len) for s in streams]
        tokenize_fps = len(train) / (time.perf_counter() - started)
        history = fit(model, encodings, train.labels(), None, None, config).history
        train_fps = len(train) / statistics.median(h.seconds for h in history)
        held_enc = model.encode(held.samples)
        infer(model, held_enc[:64], batch_size=64)  # warm-up
        passes = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            infer(model, held_enc, batch_size=64)
            passes.append(time.perf_counter() - started)
        infer_fps = len(held) / statistics.median(passes)
        mean_len = float(np.mean([len(e.ids) for e in held_enc]))
        rows.append((arch, model.num_parameters(), mean_len, tokenize_fps, train_fps, infer_fps))
        print(
            f"{arch:12s} params {model.num_parameters():>9,}  mean ids {mean_len:6.1f}  "
            f"tokenize {tokenize_fps:7.1f} fn/s  train {train_fps:7.1f} fn/s  "
            f"infer {infer_fps:7.1f} fn/s",
            flush=True,
        )
    if args.out:
        lines = [
            f"Data: `{Path(args.data).name}`, {args.n_train} training and {args.n_infer} inference "
            f"functions, max {args.max_len} ids, batch {args.batch_size} (training) / 64 "
            f"(inference), median of {args.repeats}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}.",
            "",
            "| arch | parameters | mean ids | tokenize fn/s | train fn/s | inference fn/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {a} | {p:,} | {m:.0f} | {t:.0f} | {tr:.1f} | {i:.0f} |"
            for a, p, m, t, tr, i in rows
        ]
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
