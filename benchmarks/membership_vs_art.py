"""codeaudit's membership attacks beside IBM ART 1.20.1's on the same outputs and folds.

    python benchmarks/membership_vs_art.py [--data ../shared/data/bigvul.jsonl] [--threads 1]
        [--members 400] [--nonmembers 1000] [--population N] [--shadows 4]
        [--out docs/membership-vs-art.md]

One BiGRU target is trained on --members functions (one side of each Big-Vul before/after pair,
no validation split: a memoriser); --nonmembers other pairs are the non-members; --population
further pairs (default: every pair left) are the attacker's data for --shadows shadow models, each trained with the
target's recipe on a random half of it (codeaudit's ``train_shadows``). Target and shadows are
queried once; every attack of both tools then reads those same probabilities:

* supervised attacks (codeaudit's trained attacks, ART's ``MembershipInferenceBlackBox``) are
  cross-fitted on the same 3 stratified folds (trained on two, scored on the third);
* the shadow attacks (codeaudit's ``ShadowAttack``, ART's ``ShadowModels`` pipeline: a
  ``MembershipInferenceBlackBox`` fitted on the shadows' member/non-member predictions) learn
  only from the same shadows' outputs and score every candidate;
* threshold attacks need no training.

AUC and TPR at 1% FPR are read off the pooled out-of-fold scores with codeaudit's metrics for
every tool. ART is a benchmark-only dependency: ``pip install 'codeaudit[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "membership_vs_art"
ART_VERSION = "1.20.1"


def one_per_pair(path: str, rng: random.Random) -> list:
    """One record of each before/after pair (records without a pair stand alone), shuffled."""
    from codeaudit.data.loader import load_dataset

    groups: dict[str, list] = {}
    for s in load_dataset(path):
        groups.setdefault(s.pair or s.id, []).append(s)
    ordered = sorted(groups.values(), key=lambda g: g[0].pair or g[0].id)
    rng.shuffle(ordered)
    return [rng.choice(g) for g in ordered]


def save_features(path: Path, f: object) -> None:
    np.savez(
        path,
        ids=np.array(f.ids),
        labels=f.labels,
        logits=f.logits,
        embeddings=f.embeddings,
        unk_rate=f.unk_rate,
        n_ids=f.n_ids,
        truncated=f.truncated,
    )


def load_features(path: Path) -> object:
    from codeaudit.membership.features import FeatureSet

    z = np.load(path)
    return FeatureSet(
        ids=tuple(str(i) for i in z["ids"]),
        labels=z["labels"],
        logits=z["logits"],
        embeddings=z["embeddings"],
        unk_rate=z["unk_rate"],
        n_ids=z["n_ids"],
        truncated=z["truncated"],
    )


def prepare(args: argparse.Namespace, out: Path) -> dict:
    """Train the target and the shadows (once; kept in ``out``) and store their outputs."""
    meta_path = out / "meta.json"
    if meta_path.is_file() and not args.retrain:
        return json.loads(meta_path.read_text())
    from codeaudit.config import TrainConfig
    from codeaudit.data.samples import Dataset
    from codeaudit.membership.features import extract_features
    from codeaudit.membership.references import train_shadows
    from codeaudit.train.trainer import train_on_dataset

    rng = random.Random(args.seed)
    one = one_per_pair(args.data, rng)
    n_m, n_n = args.members, args.nonmembers
    n_p = args.population or len(one) - n_m - n_n  # 0: every pair left
    if n_p < 20 or len(one) < n_m + n_n + n_p:
        raise SystemExit(f"benchmark: {args.data}: {len(one)} pairs, too few for these sizes")
    members = Dataset(samples=one[:n_m], path="members", sha256=None)
    nonmembers = Dataset(samples=one[n_m : n_m + n_n], path="nonmembers", sha256=None)
    population = Dataset(samples=one[n_m + n_n : n_m + n_n + n_p], path="population", sha256=None)
    recipe = TrainConfig(
        data="-",
        output="-",
        arch="bigru",
        epochs=args.epochs,
        max_len=args.max_len,
        embed_dim=args.dim,
        hidden_dim=args.dim,
        val_split=0.0,
        seed=args.seed,
        device="cpu",
    )
    started = time.perf_counter()
    target, _ = train_on_dataset(members, recipe, default_lang="c")
    target_s = time.perf_counter() - started
    candidates = Dataset(samples=members.samples + nonmembers.samples, path="c", sha256=None)
    save_features(out / "target.npz", extract_features(target, candidates))
    started = time.perf_counter()
    shadows = train_shadows(population, recipe, args.shadows, seed=args.seed, default_lang="c")
    shadows_s = time.perf_counter() - started
    save_features(out / "shadows.npz", shadows.features)
    np.save(out / "shadow_membership.npy", shadows.membership)
    np.save(out / "shadow_of.npy", shadows.shadow_of)
    meta = {
        "data": Path(args.data).name,
        "members": n_m,
        "nonmembers": n_n,
        "population": n_p,
        "shadows": args.shadows,
        "recipe": {
            "arch": "bigru",
            "epochs": args.epochs,
            "max_len": args.max_len,
            "embed_dim": args.dim,
            "hidden_dim": args.dim,
        },
        "target_seconds": round(target_s, 1),
        "shadows_seconds": round(shadows_s, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--name", default="bigvul")
    parser.add_argument("--members", type=int, default=400)
    parser.add_argument("--nonmembers", type=int, default=1000)
    parser.add_argument("--population", type=int, default=0)
    parser.add_argument("--shadows", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--out", help="write the Markdown table here")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)  # a benchmark process of its own
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    meta = prepare(args, out)
    print(json.dumps(meta), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
