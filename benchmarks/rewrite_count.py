"""How many rewrites harden's rewrite-averaging attack needs: the attack and the calibrated
sigma with the first 1, 2, 4 and 8 rewrites of each function (issue 19: harden within 3x of a
membership audit's time, which 8 rewrites per function rule out).

    python benchmarks/rewrite_count.py [--model benchmarks/out/frontier/bigru.pt \
        --members benchmarks/out/frontier/members.jsonl \
        --nonmembers benchmarks/out/frontier/nonmembers.jsonl] [--threads 1]

The model is observed once with 8 rewrites per function (what `codeaudit harden` does by
default); every smaller count keeps the first k rewrites of each function (the ones
`harden --rewrites k` would write: the rewrite seeds do not depend on the count). On harden's
own calibration split (seed 0), with its key, its attacks (threshold attacks and logistic
regression on every released feature set) and 3 folds: sigma calibrated on the calibration
half at --target-auc 0.6 as `harden --sigma auto` does, then on the verification half, at that
sigma and on a fixed grid, the strongest attack on one answer and on answers averaged over the
rewrites. Defaults: the generalising Juliet BiGRU of benchmarks/harden_frontier.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FRONTIER = HERE / "out" / "frontier"
KEY = "5eed" * 8
COUNTS = (1, 2, 4, 8)
SIGMAS = (0.0, 1.0, 4.0, 16.0, 64.0)


def first_rewrites(obs, k: int):  # type: ignore[no-untyped-def]
    """The observations with at most the first ``k`` rewrites of each function."""
    from dataclasses import replace

    rank = np.zeros(len(obs.variant_owner), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, owner in enumerate(obs.variant_owner.tolist()):
        rank[i] = seen.get(owner, 0)
        seen[owner] = rank[i] + 1
    keep = np.flatnonzero(rank < k)
    return replace(
        obs,
        variant_owner=obs.variant_owner[keep],
        variant_encodings=tuple(obs.variant_encodings[i] for i in keep),
        variant_logits=obs.variant_logits[keep],
        variant_normals=None if obs.variant_normals is None else obs.variant_normals[keep],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=FRONTIER / "bigru.pt")
    parser.add_argument("--members", type=Path, default=FRONTIER / "members.jsonl")
    parser.add_argument("--nonmembers", type=Path, default=FRONTIER / "nonmembers.jsonl")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--target-auc", type=float, default=0.6)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from codeaudit.data.loader import load_dataset
    from codeaudit.defense.calibrate import (
        CurveEvaluator,
        SigmaCalibrator,
        calibration_split,
    )
    from codeaudit.defense.evaluate import observe
    from codeaudit.models.checkpoint import load_model
    from codeaudit.models.nmid import NMID
    from codeaudit.threads import limit_threads

    with limit_threads(args.threads):
        model = load_model(args.model).model
        started = time.perf_counter()
        full = observe(
            model,
            load_dataset(str(args.members)),
            load_dataset(str(args.nonmembers)),
            rewrites=max(COUNTS),
            seed=0,
            batch_size=64,
        )
        full = full.with_noise(NMID(0.0, "top1", key=KEY).fit(model), model)
        print(f"observed in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        cal, ver = calibration_split(full.samples, full.membership, 0.5, 0)
        rows = []
        for k in COUNTS:
            obs = first_rewrites(full, k)

            def evaluator(o):  # type: ignore[no-untyped-def]
                return CurveEvaluator(o, "top1", classifiers=("logreg",), folds=3, seed=0)

            e_cal, e_ver = evaluator(obs.subset(cal)), evaluator(obs.subset(ver))
            sigma = SigmaCalibrator(args.target_auc).fit(e_cal)
            at = e_ver.point(sigma.sigma_)
            grid = {s: e_ver.point(s) for s in SIGMAS}
            row = {
                "rewrites": k,
                "variants": len(obs.variant_owner),
                "calibrated_sigma": sigma.sigma_,
                "reached": sigma.reached_,
                "rewrite_labels_only_auc": e_ver.rewrite_labels_only_auc,
                "verification_at_sigma": {"single": at.best_auc, "rewrite": at.rewrite_auc},
                "grid": {
                    str(s): {"single": p.best_auc, "rewrite": p.rewrite_auc}
                    for s, p in grid.items()
                },
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(
        "| rewrites | variants | sigma calibrated | rewrite attack at it | labels-only over "
        "rewrites | " + " | ".join(f"rewrite attack, sigma {s:g}" for s in SIGMAS) + " |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(SIGMAS))
    for r in rows:
        grid = " | ".join(f"{r['grid'][str(s)]['rewrite']:.3f}" for s in SIGMAS)
        print(
            f"| {r['rewrites']} | {r['variants']} | {r['calibrated_sigma']:.3g} | "
            f"{r['verification_at_sigma']['rewrite']:.3f} | "
            f"{r['rewrite_labels_only_auc']:.3f} | {grid} |"
        )
    single = " | ".join(f"{rows[0]['grid'][str(s)]['single']:.3f}" for s in SIGMAS)
    print(f"\nOne answer (no rewrites), same sigmas: {single}")
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
