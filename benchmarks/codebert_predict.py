"""Predict throughput of a CodeBERT-size (125M-parameter) RoBERTa classifier, end to end and
forward only, measured side by side in one run.

    python benchmarks/codebert_predict.py [--data ../shared/data/bigvul.jsonl] [--n 48]
        [--threads N] [--device cpu|cuda] [--out docs/codebert-predict.md]

No model can be downloaded here, so the model has CodeBERT's exact shape (RoBERTa-base: 12 layers,
hidden 768, 12 heads, 514 positions, a 50,265-token byte-level BPE trained on the data) with
random weights and one output, saved as a Hugging Face directory and loaded the way a user's
fine-tuned CodeBERT is (``codeaudit predict DIR``). Speed does not depend on the weights' values.

For each input format it times (median of --repeats passes over the same --n functions):
``predict`` as the command runs it (lexing, tokenizer, batching, forward, softmax) and the bare
forward pass over the already encoded batches, and reports their ratio. Run by hand; these
machines are shared, so compare numbers from one run only.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"


def build_codebert_size(directory: Path, texts: list[str]) -> None:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from codeaudit.models.tokenizer import HFTokenizer

    tokenizer = HFTokenizer.train_bpe(texts, vocab_size=50265)  # RoBERTa's specials and layout
    tokenizer.tok.save_pretrained(directory)
    config = RobertaConfig(  # roberta-base / microsoft/codebert-base
        vocab_size=50265,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,
    )
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n", type=int, default=48, help="functions per pass")
    parser.add_argument("--max-len", type=int, default=400, help="ids (CodeXGLUE's block size)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--formats", default="raw,tokens")
    parser.add_argument("--out", help="also write a Markdown table here")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)  # a benchmark process of its own

    from codeaudit.data.loader import load_dataset
    from codeaudit.models.checkpoint import load_model
    from codeaudit.models.inference import infer
    from codeaudit.predict import predict_dataset

    dataset = load_dataset(args.data)
    order = np.random.default_rng(0).permutation(len(dataset))
    held = dataset.subset(order[: args.n].tolist())
    texts = [" ".join(dataset.samples[i].code.split()) for i in order[args.n : args.n + 3000]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "codebert-size"
        started = time.perf_counter()
        build_codebert_size(directory, texts)
        print(f"built the model directory in {time.perf_counter() - started:.0f} s", flush=True)
        for fmt in args.formats.split(","):
            started = time.perf_counter()
            loaded = load_model(
                directory, device=args.device, input_format=fmt, max_len=args.max_len
            )
            load_s = time.perf_counter() - started
            model = loaded.model
            encodings = model.encode(held.samples)
            infer(model, encodings[: args.batch_size], batch_size=args.batch_size)  # warm-up
            end_to_end, forward = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                predict_dataset(model, held, batch_size=args.batch_size)
                end_to_end.append(time.perf_counter() - started)
                started = time.perf_counter()
                infer(model, encodings, batch_size=args.batch_size)
                forward.append(time.perf_counter() - started)
            e2e_fps = len(held) / statistics.median(end_to_end)
            fwd_fps = len(held) / statistics.median(forward)
            mean_ids = float(np.mean([len(e.ids) for e in encodings]))
            rows.append((fmt, mean_ids, load_s, e2e_fps, fwd_fps, e2e_fps / fwd_fps))
            print(
                f"{fmt}: {mean_ids:.0f} ids, load {load_s:.1f} s, predict {e2e_fps:.2f} fn/s, "
                f"forward {fwd_fps:.2f} fn/s, ratio {e2e_fps / fwd_fps:.2f}",
                flush=True,
            )
            parameters = model.num_parameters()
            del model, loaded
    device = (
        torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
    )
    lines = [
        "| input format | mean ids | load s | predict fn/s | forward-only fn/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {f} | {ids:.0f} | {load:.1f} | {e2e:.2f} | {fwd:.2f} | {ratio:.2f} |"
            for f, ids, load, e2e, fwd, ratio in rows
        ),
    ]
    header = (
        f"{parameters:,} parameters; {len(held)} functions of `{Path(args.data).name}`, at most "
        f"{args.max_len} ids, batch {args.batch_size}, median of {args.repeats}; device "
        f"{args.device} ({device or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads."
    )
    print(header)
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text(header + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
