"""Honest evaluation of membership attacks: seeded, stratified folds over members and
non-members; every supervised attack is trained on the other folds and scored only on the held-
out one; every threshold (for accuracy, precision, recall, F1) is fixed on the training folds.
Rank metrics (AUC, TPR at low FPR, advantage) are computed on the pooled held-out scores, so
each sample is scored exactly once."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.attacks.trained import (
    DISTANCE_CLASSIFIERS,
    BlockPreprocessor,
    TrainedAttack,
)
from codeaudit.membership.features import BLOCKS, FeatureSet
from codeaudit.membership.metrics import AttackScore, best_threshold, combine_folds
from codeaudit.membership.names import SELECTED


@dataclass(frozen=True)
class Evaluated:
    """One attack on one feature set: its metrics and its out-of-fold scores."""

    attack: str
    family: str
    features: tuple[str, ...]
    score: AttackScore
    scores: np.ndarray  # out-of-fold membership scores, aligned with the candidates
    seconds: float


def make_folds(
    membership: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(membership)), membership))


def evaluate_unsupervised(
    attack: MembershipAttack,
    features: FeatureSet,
    membership: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int,
    seed: int,
    scores: np.ndarray | None = None,
) -> Evaluated:
    """An attack that learns nothing from the target's membership: score everything once;
    thresholds from the training folds."""
    started = time.perf_counter()
    s = np.asarray(attack.score(features) if scores is None else scores, dtype=np.float64)
    thresholds = [best_threshold(membership[tr], s[tr]) for tr, _ in folds]
    metrics = combine_folds(
        [membership[te] for _, te in folds],
        [s[te] for _, te in folds],
        thresholds,
        n_boot=n_boot,
        seed=seed,
    )
    return Evaluated(
        attack.name, attack.family, attack.features, metrics, s, time.perf_counter() - started
    )


Pair = tuple[str, tuple[str, ...]]  # (classifier, feature set)


def attack_pairs(
    classifiers: Sequence[str],
    feature_sets: Sequence[tuple[str, ...]],
    distance_sets: Sequence[tuple[str, ...]] = (),
) -> list[Pair]:
    """Every classifier on every feature set, then the distance-based classifiers among them
    (:data:`DISTANCE_CLASSIFIERS`) on each of ``distance_sets`` (sets they alone read; a pair
    already there is not repeated)."""
    pairs = [(c, fs) for fs in feature_sets for c in classifiers]
    extra = [
        (c, fs)
        for fs in distance_sets
        for c in classifiers
        if c in DISTANCE_CLASSIFIERS and (c, fs) not in pairs
    ]
    return pairs + extra


def _fit_score_pairs(
    pairs: Sequence[Pair],
    features: FeatureSet,
    membership: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    signals: Mapping[str, np.ndarray],
    *,
    pca_components: int,
    seed: int,
    seconds: dict[Pair, float] | None = None,
) -> dict[Pair, np.ndarray]:
    """Every pair trained on ``train_idx`` and scored on ``test_idx``; the per-block
    preprocessing (scaling, PCA of the embedding) and the signals' scaling fitted on
    ``train_idx`` only, once, shared by the pairs."""
    from sklearn.preprocessing import StandardScaler

    train, test = features.subset(train_idx), features.subset(test_idx)
    needed = tuple(f for f in BLOCKS if any(f in fs for _, fs in pairs))
    pre = BlockPreprocessor(pca_components, seed).fit(train, needed)
    blocks_train = {b: pre.transform_block(train, b) for b in needed}
    blocks_test = {b: pre.transform_block(test, b) for b in needed}
    for name, values in signals.items():
        column = np.asarray(values, dtype=np.float64)[:, None]
        scaler = StandardScaler().fit(column[train_idx])
        blocks_train[name] = scaler.transform(column[train_idx])
        blocks_test[name] = scaler.transform(column[test_idx])
    scored = {}
    for classifier, feature_set in pairs:
        started = time.perf_counter()
        attack = TrainedAttack(classifier, feature_set, pca_components=pca_components, seed=seed)
        attack.fit_matrix(np.hstack([blocks_train[b] for b in feature_set]), membership[train_idx])
        scored[(classifier, feature_set)] = attack.score_matrix(
            np.hstack([blocks_test[b] for b in feature_set])
        )
        if seconds is not None:
            seconds[(classifier, feature_set)] += time.perf_counter() - started
    return scored


ENSEMBLE_SIZE = 5  # at most this many pairs vote in the selected attack
ENSEMBLE_MARGIN = 0.01  # ... each within this much of the best mean inner AUC


def select_pairs(
    pairs: Sequence[Pair],
    features: FeatureSet,
    membership: np.ndarray,
    train_idx: np.ndarray,
    signals: Mapping[str, np.ndarray],
    *,
    inner_folds: int,
    pca_components: int,
    seed: int,
) -> list[Pair]:
    """The pairs that vote in the selected attack, best first: ranked by mean AUC over
    ``inner_folds`` stratified folds of ``train_idx`` alone (ties: the earlier pair), the first
    :data:`ENSEMBLE_SIZE` of them whose mean inner AUC is within :data:`ENSEMBLE_MARGIN` of the
    best (the best always votes). Nothing outside ``train_idx`` is read, so the held-out fold
    that the ensemble then scores plays no part in forming it.

    Why several: pairs of near-equal AUC differ at the low-FPR end, which the inner folds (a few
    hundred non-members: 1% FPR is 2 false positives) cannot tell apart; averaging their
    P(member) keeps the AUC and gains there (benchmarks/selection_study.py). The margin keeps
    clearly weaker pairs out of the vote."""
    from codeaudit.metrics import rank_auc

    inner_y = membership[train_idx]
    auc = {pair: 0.0 for pair in pairs}
    for inner_tr, inner_te in make_folds(inner_y, inner_folds, seed + 1):
        scored = _fit_score_pairs(
            pairs,
            features,
            membership,
            train_idx[inner_tr],
            train_idx[inner_te],
            signals,
            pca_components=pca_components,
            seed=seed,
        )
        for pair in pairs:
            auc[pair] += rank_auc(inner_y[inner_te], scored[pair]) or 0.5
    ranked = sorted(pairs, key=lambda p: -auc[p])  # stable: equal values keep the pairs' order
    lowest = auc[ranked[0]] - ENSEMBLE_MARGIN * inner_folds  # the sums are inner_folds means
    return [p for p in ranked[:ENSEMBLE_SIZE] if auc[p] >= lowest]


def evaluate_trained(
    classifiers: Sequence[str],
    feature_sets: Sequence[tuple[str, ...]],
    features: FeatureSet,
    membership: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int,
    seed: int,
    pca_components: int = 16,
    signals: Mapping[str, np.ndarray] | None = None,
    family: str = "trained",
    select: bool = False,
    inner_folds: int = 3,
    distance_sets: Sequence[tuple[str, ...]] = (),
) -> list[Evaluated]:
    """Every (classifier, feature set) pair, trained per fold on the training folds only. The
    per-block preprocessing (scaling, PCA of the embedding) is fitted once per fold and shared.
    ``distance_sets`` are further feature sets for the distance-based classifiers alone
    (:func:`attack_pairs`); their pairs compete in the selection like the others.

    ``signals`` are further per-sample inputs aligned with ``features`` (e.g. a reference-model
    attack's scores, which learn nothing from the target's membership); a feature set may name
    them beside the model outputs. Each is standardised on the training folds like the blocks.

    Each pair's out-of-fold AUC is an honest estimate of *that* pair; the largest of them is
    not: with many pairs, picking the maximum on the folds it is reported on favours the pair
    that fits those folds' noise best. ``select`` (with more than one pair) adds the attack an
    attacker could actually run, :data:`SELECTED`: in each outer fold up to
    :data:`ENSEMBLE_SIZE` pairs are chosen by ``inner_folds``-fold cross-validation inside the
    training folds (:func:`select_pairs`), and the mean of their models' P(member), each fitted
    on the training folds, scores the held-out fold (a soft vote: 0.5 stays the decision rule).
    Its features are those of the leading pair (best inner AUC) in most folds."""
    signals = dict(signals or {})
    for name, values in signals.items():
        if name in BLOCKS or np.shape(values) != (len(features),):
            raise ValueError(f"signal {name!r} must be a new name with one value per sample")
    named = {b for fs in [*feature_sets, *distance_sets] for b in fs}
    unknown = named - set(BLOCKS) - set(signals)
    if unknown:
        raise ValueError(f"unknown attack inputs: {', '.join(sorted(unknown))}")
    n = len(features)
    pairs = attack_pairs(classifiers, feature_sets, distance_sets)
    oof = {pair: np.zeros(n) for pair in pairs}
    seconds = {pair: 0.0 for pair in pairs}
    selecting = select and len(pairs) > 1
    leading: list[Pair] = []
    selected = np.zeros(n)
    selection_seconds = 0.0
    kw = {"pca_components": pca_components, "seed": seed}
    for train_idx, test_idx in folds:
        scored = _fit_score_pairs(
            pairs, features, membership, train_idx, test_idx, signals, seconds=seconds, **kw
        )
        for pair in pairs:
            oof[pair][test_idx] = scored[pair]
        if selecting:
            started = time.perf_counter()
            voters = select_pairs(
                pairs, features, membership, train_idx, signals, inner_folds=inner_folds, **kw
            )
            leading.append(voters[0])
            selected[test_idx] = np.mean([scored[p] for p in voters], axis=0)
            selection_seconds += time.perf_counter() - started
            selection_seconds += sum(seconds[p] for p in voters) / len(folds)
    results = [
        _cross_fitted(
            f"trained-{c}",
            family,
            fs,
            oof[(c, fs)],
            membership,
            folds,
            seconds[(c, fs)],
            n_boot=n_boot,
            seed=seed,
        )
        for c, fs in pairs
    ]
    if selecting:
        counts: dict[tuple[str, ...], int] = {}
        for _, fs in leading:
            counts[fs] = counts.get(fs, 0) + 1
        modal = max(counts, key=lambda fs: counts[fs])
        results.append(
            _cross_fitted(
                SELECTED,
                family,
                modal,
                selected,
                membership,
                folds,
                selection_seconds,
                n_boot=n_boot,
                seed=seed,
            )
        )
    return results


def _cross_fitted(
    name: str,
    family: str,
    feature_set: tuple[str, ...],
    scores: np.ndarray,
    membership: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    seconds: float,
    *,
    n_boot: int,
    seed: int,
) -> Evaluated:
    metrics = combine_folds(
        [membership[te] for _, te in folds],
        [scores[te] for _, te in folds],
        [0.5] * len(folds),  # the classifier's own decision rule
        n_boot=n_boot,
        seed=seed,
        pooled=False,  # each fold's model scores on its own scale
    )
    return Evaluated(name, family, feature_set, metrics, scores, seconds)


class RowAttack(Protocol):
    """A supervised attack on inputs of its own, aligned with the candidates, fitted and scored
    by row index (the blind baseline)."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def features(self) -> tuple[str, ...]: ...

    def fit_rows(self, rows: np.ndarray, membership: np.ndarray) -> Any: ...

    def score_rows(self, rows: np.ndarray) -> np.ndarray: ...


def evaluate_rows(
    attack: RowAttack,
    membership: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int,
    seed: int,
) -> Evaluated:
    """Cross-fit a :class:`RowAttack` as :func:`evaluate_trained` does a trained attack: fitted
    on the training folds, scored only on the held-out one, each fold's classifier its own
    decision rule."""
    started = time.perf_counter()
    oof = np.zeros(len(membership))
    for train_idx, test_idx in folds:
        attack.fit_rows(train_idx, membership[train_idx])
        oof[test_idx] = attack.score_rows(test_idx)
    metrics = combine_folds(
        [membership[te] for _, te in folds],
        [oof[te] for _, te in folds],
        [0.5] * len(folds),
        n_boot=n_boot,
        seed=seed,
        pooled=False,
    )
    return Evaluated(
        attack.name, attack.family, attack.features, metrics, oof, time.perf_counter() - started
    )
