"""Per-member risk scores (``codeaudit membership --risk-scores``) on real functions: how far the
strongest attack, LiRA and SHAPr agree, whether the members SHAPr ranks riskiest are the ones
the attacks catch, and what SHAPr costs.

    python benchmarks/membership_risk.py --threads 1 [--data ../shared/data/bigvul.jsonl]
        [--members 300] [--nonmembers 600] [--references 4] [--epochs 10]

Data: one side of each before/after pair (no near-copies across the sets), shuffled with seed 0:
the first --members are the training set of a small BiGRU (64-d, 256 tokens, no validation
split), the next --nonmembers the non-members. The audit is the command line's:

    codeaudit membership MODEL --members M --nonmembers N --references R \\
        --risk-scores risk.jsonl --threads 1

SHAPr is also computed for other k from the same embeddings (its cost is timed there too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from codeaudit import api
from codeaudit.config import MembershipConfig, TrainConfig
from codeaudit.data.loader import load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "membership-risk"


def one_per_pair(path: str, rng: random.Random) -> list:
    groups: dict[str, list] = {}
    for s in load_dataset(path):
        groups.setdefault(s.pair or s.id, []).append(s)
    ordered = sorted(groups.values(), key=lambda g: g[0].pair or g[0].id)
    rng.shuffle(ordered)
    return [rng.choice(g) for g in ordered]


def write(path: Path, samples: list) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": s.id, "func": s.code, "target": s.label, "lang": s.lang}) + "\n"
            for s in samples
        )
    )
    return path


def by_shapr_decile(rows: list[dict]) -> None:
    """For the attack and LiRA: the share of members caught at 1% FPR and their mean percentile
    by that score, among the tenth of members SHAPr ranks riskiest and the tenth it ranks
    safest."""
    shapr = np.array([r["shapr"]["score"] for r in rows])
    order = np.argsort(-shapr, kind="stable")
    tenth = len(rows) // 10
    for name in ("attack", "lira"):
        if rows[0][name] is None:
            continue
        high = np.array([r[name]["high"] for r in rows])
        pct = np.array([r[name]["percentile"] for r in rows])
        top, bottom = order[:tenth], order[-tenth:]
        print(f"{name}: caught at 1% FPR overall {high.mean():.3f}; SHAPr top tenth "
              f"{high[top].mean():.3f}, bottom tenth {high[bottom].mean():.3f} ({tenth} members "
              f"each); mean {name} percentile: top tenth {pct[top].mean():.1f}, bottom tenth "
              f"{pct[bottom].mean():.1f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--name", default="bigvul")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--nonmembers", type=int, default=600)
    parser.add_argument("--references", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--k", default="1,5,10", help="SHAPr k values to compare")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    one = one_per_pair(args.data, random.Random(0))
    members = write(out / "members.jsonl", one[: args.members])
    nonmembers = write(out / "nonmembers.jsonl", one[args.members : args.members + args.nonmembers])
    model = out / "bigru.pt"
    started = time.perf_counter()
    _, trained = api.train(
        TrainConfig(
            data=str(members),
            output=str(model),
            arch="bigru",
            val_split=0.0,
            epochs=args.epochs,
            max_len=256,
            embed_dim=64,
            hidden_dim=64,
            device="cpu",
            threads=args.threads,
            force=True,
        )
    )
    print(f"trained in {time.perf_counter() - started:.0f} s", flush=True)
    risk_path = out / "risk.jsonl"
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = api.membership(
        MembershipConfig(
            model=str(model),
            members=str(members),
            nonmembers=str(nonmembers),
            references=args.references,
            risk_scores=str(risk_path),
            threads=args.threads,
            device="cpu",
            force=True,
        )
    )
    audit_s = time.perf_counter() - started
    load_after = os.getloadavg()
    lines = [json.loads(line) for line in risk_path.read_text().splitlines()]
    rows = lines[1:]
    summary = result.risk_scores
    print(f"load average before/after: {load_before} / {load_after}")
    print(f"best attack {result.best.attack} on {result.best.features}: AUC {result.best.auc:.3f}")
    print(f"members/non-members accuracy {result.utility.members_accuracy:.3f} / "
          f"{result.utility.nonmembers_accuracy:.3f}")  # fmt: skip
    print(f"audit {audit_s:.1f} s; timings {result.timings}")
    for method in summary.methods:
        print(f"{method.name}: {method.detail}; high risk {method.high_risk}")
    for c in summary.correlations:
        print(f"spearman {c.a} vs {c.b}: {c.spearman}")

    by_shapr_decile(rows)

    # SHAPr for other k, from the same embeddings, timed.
    from codeaudit.data.loader import load_data
    from codeaudit.membership.features import extract_features
    from codeaudit.membership.risk import knn_shapley
    from codeaudit.models.checkpoint import load_with
    from codeaudit.threads import limit_threads

    config = MembershipConfig(model=str(model), members=str(members), nonmembers=str(nonmembers))
    with limit_threads(args.threads):
        loaded = load_with(str(model), config.model_options, device="cpu").model
        f_m, f_n = (
            extract_features(loaded, load_data(str(p), config.data_options, require_labels=True))
            for p in (members, nonmembers)
        )
        from scipy.stats import spearmanr

        attack = np.array([r["attack"]["score"] for r in rows])
        for k in (int(v) for v in args.k.split(",")):
            t0 = time.perf_counter()
            values = knn_shapley(f_m.embeddings, f_m.labels, f_n.embeddings, f_n.labels, k)
            seconds = time.perf_counter() - t0
            rho = spearmanr(values, attack).statistic
            print(f"SHAPr k={k}: {seconds:.3f} s, k-NN accuracy {values.sum():.3f}, "
                  f"spearman vs attack {rho:.3f}")  # fmt: skip
    print(f"model {trained.train_metrics.accuracy:.3f} train accuracy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
