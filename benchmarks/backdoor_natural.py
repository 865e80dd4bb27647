"""Why clean models are flagged: do the inverted triggers work anywhere, and are they in the data?

    python benchmarks/backdoor_natural.py [--models /tmp/bd/models] [--data-dir DIR]

Run after `benchmarks/backdoor.py --scan` (trigger lengths 5 and 2). For every model the grid
kept, it takes the anchored 1->0 trigger and measures its flip rate on the correctly classified
vulnerable functions of detect.clean at three places: the scan's sample-specific positions, a
random position, and right after the first id. It then lists the identifiers that occur in at
least 20 training functions of one label and none of the other: natural triggers a model can
learn exactly as it learns a poisoned one (see docs/backdoor-results.md).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

import torch

from codeaudit.backdoor.positions import batched_logits, context_ids, insert, select_positions
from codeaudit.data.loader import load_dataset
from codeaudit.models.checkpoint import load_model

KINDS = ("clean", "identifier", "deadcode", "grammar", "postfix")


def flip_rate(model: object, rows: list[list[int]]) -> float:
    return float((batched_logits(model, rows).argmax(1) == 0).mean())


def one_label_names(train: Path, least: int = 20) -> dict[int, list[tuple[int, str]]]:
    seen: dict[int, Counter[str]] = {0: Counter(), 1: Counter()}
    for line in train.read_text().splitlines():
        record = json.loads(line)
        seen[int(record["target"])].update(set(re.findall(r"\b[A-Za-z_]\w*\b", record["func"])))
    return {
        label: sorted(
            ((n, w) for w, n in seen[label].items() if n >= least and seen[1 - label][w] == 0),
            reverse=True,
        )
        for label in (0, 1)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("/tmp/bd/models"))
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/bd/data/juliet"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    detect = [s for s in load_dataset(str(args.data_dir / "detect.clean.jsonl")) if s.label == 1]
    print("| model | trigger len | anchored 1->0 trigger | at its positions | random | start |")
    print("|---|---:|---|---:|---:|---:|")
    for arch in ("lstm", "bigru"):
        for kind in KINDS:
            path = args.models / f"{arch}-{kind}.pt"
            if not path.is_file():
                continue
            model = load_model(str(path)).model
            model.eval()
            stoi = {t: i for i, t in enumerate(model.tokenizer.vocabulary())}
            contexts = [list(context_ids(model, s, 5)[0]) for s in detect]
            right = batched_logits(model, contexts).argmax(1) == 1
            victims = [s for s, ok in zip(detect, right, strict=True) if ok]
            placed = select_positions(model, victims, room=5)
            for suffix, length in (("head", 5), ("head-len2", 2)):
                scan = args.models / f"scan-{arch}-{kind}-{suffix}.json"
                if not scan.is_file():
                    continue
                pair = next(p for p in json.loads(scan.read_text())["pairs"] if p["pair"] == "1->0")
                trigger = [stoi[t] for t in pair["anchored"]]
                rng = random.Random(0)
                at = [insert(p.context, p.position, trigger) for p in placed]
                anywhere = [
                    insert(p.context, rng.randrange(1, max(2, len(p.context) - 1)), trigger)
                    for p in placed
                ]
                start = [insert(p.context, 1, trigger) for p in placed]
                print(
                    f"| {arch}-{kind} | {length} | `{' '.join(pair['anchored'])}` | "
                    f"{flip_rate(model, at):.3f} | {flip_rate(model, anywhere):.3f} | "
                    f"{flip_rate(model, start):.3f} |",
                    flush=True,
                )
    names = one_label_names(args.data_dir / "train.clean.jsonl")
    print("\nidentifiers in >= 20 training functions of one label only:")
    for label in (0, 1):
        print(f"label {label}:", ", ".join(f"{w} ({n})" for n, w in names[label][:15]))


if __name__ == "__main__":
    main()
