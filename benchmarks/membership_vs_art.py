"""codeaudit's membership attacks beside IBM ART 1.20.1's on the same outputs and folds.

    python benchmarks/membership_vs_art.py [--data ../shared/data/bigvul.jsonl] [--threads 1]
        [--members 400] [--nonmembers 1000] [--population N] [--shadows 4]
        [--out docs/membership-vs-art.md]

One BiGRU target is trained on --members functions (one side of each Big-Vul before/after pair,
no validation split: a memoriser); --nonmembers other pairs are the non-members; --population
further pairs (default: every pair left) are the attacker's data for --shadows shadow models,
each trained with the target's recipe on a random half of it (codeaudit's ``train_shadows``).
Target and shadows are queried once; every attack of both tools then reads those same
probabilities (codeaudit's inputs are derived from them as for a model that releases only
probabilities: logits = log-probabilities; no embedding, no tokenizer):

* supervised attacks (codeaudit's trained attacks, ART's ``MembershipInferenceBlackBox``) are
  cross-fitted on the same 3 stratified folds (trained on two, scored on the third); codeaudit's
  run as under ``--thorough``: all seven models on every combination of logits, loss and
  confidence, k-NN and SVM also on ``probs-label`` (ART's input), and the selection among them
  (a vote of up to 5);
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


def released(f: object) -> object:
    """The outputs as a probability-only model releases them (what ART's attacks read):
    float32 probabilities; logits are their logarithms."""
    from codeaudit.membership.features import FeatureSet

    probs = f.probabilities.astype(np.float32)
    return FeatureSet(
        ids=f.ids,
        labels=f.labels,
        logits=np.log(np.clip(probs, np.finfo(np.float32).tiny, 1.0)),
        embeddings=np.zeros((len(f), 1), dtype=np.float32),
        unk_rate=np.zeros(len(f)),
        n_ids=f.n_ids,
        truncated=f.truncated,
    )


def measured(membership: np.ndarray, scores: np.ndarray, folds: list | None) -> tuple:
    """(AUC, TPR at 1% FPR) with codeaudit's metrics; cross-fitted scores (``folds``) per fold
    and averaged, as the audit does for every supervised attack, whatever the tool."""
    from codeaudit.membership.metrics import combine_folds, score_attack

    if folds is None:
        score = score_attack(membership, scores, n_boot=10)
    else:
        score = combine_folds(
            [membership[te] for _, te in folds],
            [scores[te] for _, te in folds],
            [0.5] * len(folds),
            n_boot=10,
            seed=0,
            pooled=False,
        )
    return score.auc, score.tpr_at_fpr["0.01"]


def art_attack(kind: str, seed: int) -> object:
    import torch
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification.scikitlearn import ScikitlearnClassifier
    from sklearn.dummy import DummyClassifier

    # ART's attack reads only predictions here (pred=...): the estimator is a stand-in that
    # tells it there are two classes
    estimator = ScikitlearnClassifier(DummyClassifier().fit(np.zeros((2, 1)), [0, 1]))
    torch.manual_seed(seed)  # ART's nn attack model draws from torch's global generator
    np.random.seed(seed)  # and its sklearn models from numpy's
    return MembershipInferenceBlackBox(estimator, attack_model_type=kind, input_type="prediction")


def art_fit_score(
    kind: str, seed: int, train: object, y_train: np.ndarray, test: object
) -> np.ndarray:
    """ART's black-box attack fitted on members/non-members of ``train``, P(member) on ``test``."""
    attack = art_attack(kind, seed)
    probs = train.probabilities.astype(np.float32)
    inside, outside = y_train == 1, y_train == 0
    attack.fit(
        y=train.labels[inside],
        test_y=train.labels[outside],
        pred=probs[inside],
        test_pred=probs[outside],
    )
    inferred = attack.infer(
        None, test.labels, pred=test.probabilities.astype(np.float32), probabilities=True
    )
    inferred = np.asarray(inferred, dtype=np.float64)
    return inferred[:, -1] if inferred.ndim == 2 else inferred.ravel()


ART_MODELS = ("rf", "gb", "nn", "lr", "knn", "svm", "dt")
CODEAUDIT_MODELS = ("logreg", "mlp", "rf", "gb", "knn", "svm", "dt")


def evaluate(args: argparse.Namespace, out: Path) -> list[tuple]:
    """Rows (tool, channel, attack, AUC, TPR at 1% FPR, seconds)."""
    from codeaudit.membership.attacks.shadow import ShadowAttack
    from codeaudit.membership.attacks.threshold import SIGNALS, ThresholdAttack
    from codeaudit.membership.attacks.trained import DISTANCE_FEATURE_SETS
    from codeaudit.membership.evaluate import SELECTED, evaluate_trained, make_folds
    from codeaudit.membership.features import all_feature_sets
    from codeaudit.membership.references import ShadowOutputs

    meta = json.loads((out / "meta.json").read_text())
    target = released(load_features(out / "target.npz"))
    membership = np.r_[np.ones(meta["members"]), np.zeros(meta["nonmembers"])].astype(np.int64)
    folds = make_folds(membership, args.folds, args.seed)
    shadows = ShadowOutputs(
        released(load_features(out / "shadows.npz")),
        np.load(out / "shadow_membership.npy"),
        0.0,
        np.load(out / "shadow_of.npy"),
    )
    rows: list[tuple] = []

    def add(tool: str, channel: str, attack: str, scores: np.ndarray, cross: bool, t: float):
        auc, tpr = measured(membership, scores, folds if cross else None)
        rows.append((tool, channel, attack, auc, tpr, time.perf_counter() - t))
        print(f"{tool:9s} {channel:22s} {attack:40s} {auc:.3f} {tpr:.3f}", flush=True)

    # threshold attacks (no training)
    for signal in SIGNALS:
        if signal == "unknown-tokens":  # the tokenizer: a channel ART cannot see
            continue
        t0 = time.perf_counter()
        add(
            "codeaudit",
            "threshold",
            f"threshold-{signal}",
            ThresholdAttack(signal).score(target),
            False,
            t0,
        )
    # supervised attacks on the target's outputs, cross-fitted on the same folds; as under
    # --thorough, k-NN and SVM also read the probabilities and the label (ART's input)
    outputs = [fs for fs in all_feature_sets() if "embedding" not in fs]
    t0 = time.perf_counter()
    found = evaluate_trained(
        CODEAUDIT_MODELS,
        outputs,
        target,
        membership,
        folds,
        n_boot=10,
        seed=args.seed,
        select=True,
        distance_sets=DISTANCE_FEATURE_SETS,
    )
    seconds = time.perf_counter() - t0
    fixed = ("logits", "loss", "confidence")
    first = len(rows)
    for ev in found:
        if ev.attack == SELECTED:
            rows.append(
                (
                    "codeaudit",
                    "trained (3 folds)",
                    f"{SELECTED} (vote of up to 5; the leading pair on {'+'.join(ev.features)} in "
                    "most folds)",
                    *measured(membership, ev.scores, folds),
                    seconds,
                )
            )
        elif ev.features == fixed or ev.features in DISTANCE_FEATURE_SETS:
            rows.append(
                (
                    "codeaudit",
                    "trained (3 folds)",
                    f"{ev.attack} on {'+'.join(ev.features)}",
                    *measured(membership, ev.scores, folds),
                    ev.seconds,
                )
            )
    best = max((ev for ev in found if ev.attack != SELECTED), key=lambda e: e.score.auc)
    rows.append(
        (
            "codeaudit",
            "trained (3 folds)",
            f"max over {len(found) - 1} models on the evaluation folds ({best.attack} on "
            f"{'+'.join(best.features)}; biased)",
            *measured(membership, best.scores, folds),
            0.0,
        )
    )
    for row in rows[first:]:
        print(row, flush=True)
    for kind in args.art_models.split(","):
        t0 = time.perf_counter()
        scores = np.zeros(len(membership))
        for train_idx, test_idx in folds:
            scores[test_idx] = art_fit_score(
                kind,
                args.seed,
                target.subset(train_idx),
                membership[train_idx],
                target.subset(test_idx),
            )
        add("ART", "trained (3 folds)", f"MembershipInferenceBlackBox {kind}", scores, True, t0)
    # shadow models: the same shadows' outputs for both tools
    t0 = time.perf_counter()
    attack = ShadowAttack(shadows, seed=args.seed).fit(target, np.zeros(len(membership)))
    add(
        "codeaudit",
        "shadow",
        f"{attack.name} on {'+'.join(attack.features)} (chosen on the shadows)",
        attack.score(target),
        False,
        t0,
    )
    t0 = time.perf_counter()
    former = ShadowAttack(shadows, candidates=(("gb", "logits+loss"),), seed=args.seed)
    former.fit(target, np.zeros(len(membership)))
    add(
        "codeaudit",
        "shadow",
        "shadow-gb on logits+loss (before this change)",
        former.score(target),
        False,
        t0,
    )
    # what --shadows reads on a model that releases its raw logits (not only probabilities):
    # each model's logits carry an offset of their own, which the former attack learnt
    raw_target = load_features(out / "target.npz")
    raw = ShadowOutputs(
        load_features(out / "shadows.npz"), shadows.membership, 0.0, shadows.shadow_of
    )
    for label, candidates in (
        ("shadow-gb on raw logits+loss (before this change)", (("gb", "logits+loss"),)),
        ("shadow, chosen on the shadows, on raw logits (this change)", None),
    ):
        t0 = time.perf_counter()
        kw = {"candidates": candidates} if candidates else {}
        on_raw = ShadowAttack(raw, seed=args.seed, **kw).fit(raw_target, np.zeros(len(membership)))
        add(
            "codeaudit",
            "shadow (raw logits)",
            f"{label}: {on_raw.name}",
            on_raw.score(raw_target),
            False,
            t0,
        )
    for kind in args.art_models.split(","):
        t0 = time.perf_counter()
        scores = art_fit_score(kind, args.seed, shadows.features, shadows.membership, target)
        add("ART", "shadow", f"ShadowModels + BlackBox {kind}", scores, False, t0)
    return rows


def table(meta: dict, rows: list[tuple], args: argparse.Namespace) -> str:
    r = meta["recipe"]
    lines = [
        f"Target: BiGRU ({r['embed_dim']}-d embeddings, {r['hidden_dim']} hidden units, "
        f"{r['max_len']} tokens, {r['epochs']} epochs, no validation split) trained on "
        f"{meta['members']} functions of `{meta['data']}` in {meta['target_seconds']} s; "
        f"{meta['nonmembers']} non-members; {meta['shadows']} shadows on halves of "
        f"{meta['population']} population functions ({meta['shadows_seconds']} s). "
        f"{args.folds} folds, seed {args.seed}, --threads {args.threads}.",
        "",
        "| tool | channel | attack | AUC | TPR@1%FPR | seconds |",
        "|---|---|---|---:|---:|---:|",
    ]
    for tool, channel, attack, auc, tpr, seconds in rows:
        lines.append(
            f"| {tool} | {channel} | {attack} | {auc:.3f} | "
            f"{'-' if tpr is None else f'{tpr:.3f}'} | {seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--art-models", default=",".join(ART_MODELS))
    parser.add_argument("--out", help="write the Markdown table here")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    try:
        import art  # noqa: F401
    except ImportError:
        print(
            f"benchmark: needs IBM's Adversarial Robustness Toolbox {ART_VERSION}: "
            "pip install 'codeaudit[bench]'",
            file=sys.stderr,
        )
        return 2
    from codeaudit.threads import limit_threads

    out = OUT / args.name
    out.mkdir(parents=True, exist_ok=True)
    with limit_threads(args.threads):
        meta = prepare(args, out)
        print(json.dumps(meta), flush=True)
        if args.prepare_only:
            return 0
        rows = evaluate(args, out)
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    if args.out:
        Path(args.out).write_text(table(meta, rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
