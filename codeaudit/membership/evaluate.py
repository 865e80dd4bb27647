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
from codeaudit.membership.attacks.trained import BlockPreprocessor, TrainedAttack
from codeaudit.membership.features import FEATURES, FeatureSet
from codeaudit.membership.metrics import AttackScore, best_threshold, combine_folds


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
) -> list[Evaluated]:
    """Every (classifier, feature set) pair, trained per fold on the training folds only. The
    per-block preprocessing (scaling, PCA of the embedding) is fitted once per fold and shared.

    ``signals`` are further per-sample inputs aligned with ``features`` (e.g. a reference-model
    attack's scores, which learn nothing from the target's membership); a feature set may name
    them beside the model outputs. Each is standardised on the training folds like the blocks."""
    from sklearn.preprocessing import StandardScaler

    signals = dict(signals or {})
    for name, values in signals.items():
        if name in FEATURES or np.shape(values) != (len(features),):
            raise ValueError(f"signal {name!r} must be a new name with one value per sample")
    unknown = {b for fs in feature_sets for b in fs} - set(FEATURES) - set(signals)
    if unknown:
        raise ValueError(f"unknown attack inputs: {', '.join(sorted(unknown))}")
    n = len(features)
    pairs = [(c, fs) for fs in feature_sets for c in classifiers]
    oof = {pair: np.zeros(n) for pair in pairs}
    seconds = {pair: 0.0 for pair in pairs}
    for train_idx, test_idx in folds:
        train, test = features.subset(train_idx), features.subset(test_idx)
        needed = tuple(f for f in FEATURES if any(f in fs for fs in feature_sets))
        pre = BlockPreprocessor(pca_components, seed).fit(train, needed)
        blocks_train = {b: pre.transform_block(train, b) for b in needed}
        blocks_test = {b: pre.transform_block(test, b) for b in needed}
        for name, values in signals.items():
            column = np.asarray(values, dtype=np.float64)[:, None]
            scaler = StandardScaler().fit(column[train_idx])
            blocks_train[name] = scaler.transform(column[train_idx])
            blocks_test[name] = scaler.transform(column[test_idx])
        for classifier, feature_set in pairs:
            started = time.perf_counter()
            attack = TrainedAttack(
                classifier, feature_set, pca_components=pca_components, seed=seed
            )
            attack.fit_matrix(
                np.hstack([blocks_train[b] for b in feature_set]), membership[train_idx]
            )
            oof[(classifier, feature_set)][test_idx] = attack.score_matrix(
                np.hstack([blocks_test[b] for b in feature_set])
            )
            seconds[(classifier, feature_set)] += time.perf_counter() - started
    results = []
    for classifier, feature_set in pairs:
        s = oof[(classifier, feature_set)]
        metrics = combine_folds(
            [membership[te] for _, te in folds],
            [s[te] for _, te in folds],
            [0.5] * len(folds),  # the classifier's own decision rule
            n_boot=n_boot,
            seed=seed,
            pooled=False,  # each fold's model scores on its own scale
        )
        results.append(
            Evaluated(
                f"trained-{classifier}",
                family,
                feature_set,
                metrics,
                s,
                seconds[(classifier, feature_set)],
            )
        )
    return results


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
