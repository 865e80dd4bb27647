"""Cross-fitted selection or ensemble of the trained attack model: which reaches the low-FPR end.

    python benchmarks/selection_study.py [--names bigvul-default,bigvul,juliet] [--seeds 0,1,2,3,4]
        [--noise 18] [--threads 1]

Reads the targets' outputs that ``benchmarks/membership_vs_art.py`` stores (run its three
commands first, ``--prepare-only`` is enough) and evaluates, on the same 51 attack models
(seven models on every combination of logits, loss and confidence, k-NN and SVM also on
``probs-label``) and the same 3 outer folds, candidates for the ``trained-selected`` row. Every
candidate is cross-fitted: chosen or weighted from 3 inner folds of each outer fold's training
part (as ``select_pair`` does), then scored on the held-out fold by the models fitted on the whole
training part. It prints AUC and TPR at 1% FPR (per fold, averaged, as the audit measures every
supervised attack) for each candidate, target and outer-fold seed (``--seeds``: the folds and
models' seed; the targets stay the same), and for ``--noise`` pure-noise data sets (the setting
of ``test_selection_on_noise_stays_near_half_where_the_maximum_does_not``: logistic regression and
a decision tree on 6 feature sets, 160 samples), where every candidate's true AUC is 0.5.

Candidates: ``select-auc`` (the former selection: the one pair of best mean inner AUC);
``select-auc+pauc`` (the one pair of best mean of inner AUC and partial AUC up to 10% FPR,
normalised by 0.1); ``select-tpr5`` (best mean inner TPR at 5% FPR, ties by AUC);
``top{k}-mean`` (mean of the k best pairs' P(member) by inner AUC); ``top5-mean-within-{d}``
(the same, k = 5, less the pairs more than d below the best inner AUC: with d = 0.01 what
``evaluate_trained(..., select=True)`` now does); ``top{k}-z`` (mean of their logit scores,
each standardised by its inner out-of-fold scores); ``top{k}-rank`` (mean of their ranks within
the held-out fold: label-free, but transductive); ``top{k}-z-by-auc+pauc`` (``top{k}-z`` on the
pairs ranked by AUC plus partial AUC); ``pair-z`` (the best pair by AUC and the best by AUC plus
partial AUC); ``stack5`` (logistic regression on the top 5 pairs' inner out-of-fold logit
scores). The inner folds' scores are cached in /tmp/selection_study (delete it after changing
the targets).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from membership_vs_art import CODEAUDIT_MODELS, OUT, load_features, released  # noqa: E402

CACHE = Path("/tmp/selection_study")
INNER = 3


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _pauc(y: np.ndarray, s: np.ndarray, fpr_max: float = 0.1) -> float:
    """Area under the ROC curve from FPR 0 to ``fpr_max``, divided by ``fpr_max``."""
    from codeaudit.membership.metrics import roc_points

    fpr, tpr = roc_points(y, s)[:2]
    grid = np.linspace(0.0, fpr_max, 101)
    return float(np.trapezoid(np.interp(grid, fpr, tpr), grid) / fpr_max)


def fold_cache(features, membership, folds, pairs, seed: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Per outer fold: every pair's held-out scores, and its inner out-of-fold scores on the
    training part with the inner folds' metrics."""
    from codeaudit.membership.evaluate import _fit_score_pairs, make_folds
    from codeaudit.membership.metrics import tpr_at_fpr
    from codeaudit.metrics import rank_auc

    kw = {"pca_components": 16, "seed": seed}
    out = []
    for train_idx, test_idx in folds:
        test = _fit_score_pairs(pairs, features, membership, train_idx, test_idx, {}, **kw)
        inner_y = membership[train_idx]
        inner_scores = {p: np.zeros(len(train_idx)) for p in pairs}
        metrics = {p: [] for p in pairs}
        for inner_tr, inner_te in make_folds(inner_y, INNER, seed + 1):
            scored = _fit_score_pairs(
                pairs, features, membership, train_idx[inner_tr], train_idx[inner_te], {}, **kw
            )
            y = inner_y[inner_te]
            for p in pairs:
                s = scored[p]
                inner_scores[p][inner_te] = s
                metrics[p].append((rank_auc(y, s) or 0.5, _pauc(y, s), tpr_at_fpr(y, s, 0.05)))
        out.append(
            {
                "train": train_idx,
                "test": test_idx,
                "scores": test,
                "inner_y": inner_y,
                "inner_scores": inner_scores,
                "inner": {p: np.mean(m, axis=0) for p, m in metrics.items()},
            }
        )
    return out


def _ranked(pairs: list, inner: dict, key) -> list:  # type: ignore[no-untyped-def]
    return sorted(pairs, key=lambda p: -key(inner[p]))  # stable: earlier pair first on ties


def _zmean(fold: dict, top: list) -> np.ndarray:
    z = []
    for p in top:
        ref = _logit(fold["inner_scores"][p])
        z.append((_logit(fold["scores"][p]) - ref.mean()) / (ref.std() or 1.0))
    return np.mean(z, axis=0)


def candidates(fold: dict, pairs: list) -> dict[str, np.ndarray]:
    """Held-out scores of every candidate in one outer fold."""
    from scipy.stats import rankdata
    from sklearn.linear_model import LogisticRegression

    inner, scores = fold["inner"], fold["scores"]
    by_auc = _ranked(pairs, inner, lambda m: m[0])
    found = {
        "select-auc": scores[by_auc[0]],
        "select-auc+pauc": scores[_ranked(pairs, inner, lambda m: m[0] + m[1])[0]],
        "select-tpr5": scores[_ranked(pairs, inner, lambda m: m[2] + 1e-6 * m[0])[0]],
    }
    for k in (3, 5):
        top = by_auc[:k]
        found[f"top{k}-mean"] = np.mean([scores[p] for p in top], axis=0)
        found[f"top{k}-z"] = _zmean(fold, top)
        found[f"top{k}-rank"] = np.mean([rankdata(scores[p]) for p in top], axis=0)
    for delta in (0.005, 0.01, 0.02):
        near = [p for p in by_auc[:5] if inner[p][0] >= inner[by_auc[0]][0] - delta]
        found[f"top5-mean-within-{delta}"] = np.mean([scores[p] for p in near], axis=0)
    by_pauc = _ranked(pairs, inner, lambda m: m[0] + m[1])
    found["top5-z-by-auc+pauc"] = _zmean(fold, by_pauc[:5])
    found["top3-z-by-auc+pauc"] = _zmean(fold, by_pauc[:3])
    found["pair-z"] = _zmean(fold, list(dict.fromkeys([by_auc[0], by_pauc[0]])))
    top = by_auc[:5]
    x_inner = np.column_stack([_logit(fold["inner_scores"][p]) for p in top])
    stack = LogisticRegression(max_iter=1000).fit(x_inner, fold["inner_y"])
    found["stack5"] = stack.predict_proba(np.column_stack([_logit(scores[p]) for p in top]))[:, 1]
    found["_chosen"] = by_auc[:5]  # type: ignore[assignment]
    return found


def measure(membership: np.ndarray, cache: list[dict], pairs: list) -> dict[str, tuple]:
    from codeaudit.membership.metrics import combine_folds

    per = [candidates(f, pairs) for f in cache]
    result = {}
    for name in per[0]:
        if name.startswith("_"):
            continue
        s = combine_folds(
            [membership[f["test"]] for f in cache],
            [p[name] for p in per],
            [0.5] * len(cache),
            n_boot=2,
            seed=0,
            pooled=False,
        )
        result[name] = (s.auc, s.tpr_at_fpr.get("0.01"))
    result["_chosen"] = [p["_chosen"] for p in per]  # type: ignore[assignment]
    return result


def target_pairs() -> list:
    from codeaudit.membership.attacks.trained import DISTANCE_FEATURE_SETS
    from codeaudit.membership.evaluate import attack_pairs
    from codeaudit.membership.features import all_feature_sets

    outputs = [fs for fs in all_feature_sets() if "embedding" not in fs]
    return attack_pairs(CODEAUDIT_MODELS, outputs, DISTANCE_FEATURE_SETS)


def run_target(name: str, seed: int) -> tuple[dict, float]:
    import json

    from codeaudit.membership.evaluate import make_folds

    path = CACHE / f"{name}-{seed}.pkl"
    out = OUT / name
    meta_path = out / "meta.json"  # written once the shadows are trained too
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta = {"members": 400, "nonmembers": 1000, **meta}
    membership = np.r_[np.ones(meta["members"]), np.zeros(meta["nonmembers"])].astype(np.int64)
    pairs = target_pairs()
    started = time.perf_counter()
    if path.is_file():
        cache = pickle.loads(path.read_bytes())
    else:
        target = released(load_features(out / "target.npz"))
        folds = make_folds(membership, 3, seed)
        cache = fold_cache(target, membership, folds, pairs, seed)
        path.write_bytes(pickle.dumps(cache))
    return measure(membership, cache, pairs), time.perf_counter() - started


def run_noise(count: int) -> dict[str, list]:
    from codeaudit.membership.evaluate import attack_pairs, make_folds
    from codeaudit.membership.features import FeatureSet

    sets = [
        ("embedding",),
        ("logits",),
        ("loss",),
        ("confidence",),
        ("logits", "loss"),
        ("embedding", "confidence"),
    ]
    pairs = attack_pairs(["logreg", "dt"], sets)
    results: dict[str, list] = {}
    for seed in range(count):
        rng = np.random.default_rng(100 + seed)
        n = 160
        features = FeatureSet(
            ids=tuple(str(i) for i in range(n)),
            labels=rng.integers(0, 2, n),
            logits=rng.normal(size=(n, 2)).astype(np.float32),
            embeddings=rng.normal(size=(n, 6)).astype(np.float32),
            unk_rate=np.zeros(n),
            n_ids=np.full(n, 20),
            truncated=np.zeros(n, dtype=bool),
        )
        membership = np.r_[np.ones(80), np.zeros(80)].astype(np.int64)
        cache = fold_cache(features, membership, make_folds(membership, 3, seed), pairs, seed)
        for name, value in measure(membership, cache, pairs).items():
            if not name.startswith("_"):
                results.setdefault(name, []).append(value[0])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", default="bigvul-default,bigvul,juliet")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--noise", type=int, default=18)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from codeaudit.threads import limit_threads

    CACHE.mkdir(exist_ok=True)
    with limit_threads(args.threads):
        if args.noise:
            noise = run_noise(args.noise)
            print("pure noise: mean AUC (SD of the mean) over", args.noise, "data sets")
            for name, values in noise.items():
                v = np.asarray(values)
                print(f"  {name:16s} {v.mean():.3f} ({v.std(ddof=1) / np.sqrt(len(v)):.3f})")
        for name in [n for n in args.names.split(",") if n]:
            table: dict[str, list] = {}
            for seed in [int(s) for s in args.seeds.split(",") if s]:
                result, seconds = run_target(name, seed)
                chosen = result.pop("_chosen")
                print(f"{name} seed {seed} ({seconds:.0f} s): top-5 by inner AUC per fold:")
                for top in chosen:
                    print("   ", ", ".join(f"{c}/{'+'.join(fs)}" for c, fs in top))
                for cand, value in result.items():
                    table.setdefault(cand, []).append(value)
            print(f"{name}: AUC / TPR@1%FPR per seed, then the mean")
            for cand, values in table.items():
                cells = " ".join(f"{a:.4f}/{t:.3f}" for a, t in values)
                mean = np.mean(values, axis=0)
                print(f"  {cand:16s} {cells}  mean {mean[0]:.4f}/{mean[1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
