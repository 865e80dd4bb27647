"""Metrics for membership-inference attacks.

Conventions: ``labels`` holds 1 for a member (a training sample of the target model) and 0 for a
non-member; ``scores`` is a float per sample, higher meaning "more likely a member". An attack
predicts "member" when ``score >= threshold``.

What is reported, following Carlini et al. (S&P 2022) and the membership literature:

- ROC AUC (Mann-Whitney, ties counted half) with a stratified-bootstrap percentile interval;
- TPR at low FPR (1% and 0.1%), read off the empirical ROC curve without interpolation: AUC alone
  hides attacks that identify a few members with high confidence, which are the ones that matter;
- the attacker advantage max(TPR - FPR) (Yeom et al. 2018);
- balanced accuracy, accuracy, precision, recall and F1 at a fixed threshold.

Every function is vectorised (sorting plus cumulative sums): score_attack on 100,000 samples,
with the default 200 bootstrap replicates, takes about 0.3 s. Comparisons that decide ties between
thresholds use exact integer arithmetic, so the results do not depend on floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeaudit.metrics import rank_auc

FPR_TARGETS: tuple[float, ...] = (0.01, 0.001)

__all__ = [
    "FPR_TARGETS",
    "AttackScore",
    "advantage",
    "best_threshold",
    "bootstrap_auc_ci",
    "combine_folds",
    "roc_points",
    "score_attack",
    "threshold_metrics",
    "tpr_at_fpr",
]


# --------------------------------------------------------------------------------------------
# validation and the shared ROC computation
# --------------------------------------------------------------------------------------------


def _validate(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked copies: (labels as a boolean array, scores as float64). Raises ValueError."""
    y = np.asarray(labels)
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores must be numbers: {exc}") from None
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D arrays (got shapes {y.shape} and {s.shape})"
        )
    if len(y) != len(s):
        raise ValueError(f"labels and scores differ in length ({len(y)} != {len(s)})")
    if y.dtype == np.bool_:
        members = y
    else:
        if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
            raise ValueError(f"labels must be 0 (non-member) or 1 (member), got dtype {y.dtype}")
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise ValueError(
                f"labels must be 0 (non-member) or 1 (member), found {y[np.flatnonzero(bad)[0]]!r}"
            )
        members = y == 1
    finite = np.isfinite(s)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"scores must be finite: {int((~finite).sum())} NaN/inf value(s), first at index {i}"
        )
    n_members = int(members.sum())
    if n_members == 0 or n_members == len(members):
        raise ValueError(
            "membership metrics needs both members and non-members "
            f"(got {n_members} members, {len(members) - n_members} non-members)"
        )
    return members, s


@dataclass(frozen=True)
class _Roc:
    """Cumulative counts at every distinct threshold, highest first, with a leading +inf."""

    thresholds: np.ndarray  # float64, [+inf, distinct scores descending]
    tp: np.ndarray  # int64, members with score >= threshold
    fp: np.ndarray  # int64, non-members with score >= threshold
    n_pos: int
    n_neg: int

    @property
    def fpr(self) -> np.ndarray:
        return self.fp / self.n_neg

    @property
    def tpr(self) -> np.ndarray:
        return self.tp / self.n_pos


def _roc(members: np.ndarray, s: np.ndarray) -> _Roc:
    """The empirical ROC curve of validated inputs (see roc_points)."""
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    y_sorted = members[order].astype(np.int64)
    # the last index of each run of equal scores: all tied samples switch together
    last = np.flatnonzero(np.diff(s_sorted) != 0)
    last = np.concatenate((last, [len(s_sorted) - 1]))
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    zero = np.zeros(1, dtype=np.int64)
    return _Roc(
        thresholds=np.concatenate(([np.inf], s_sorted[last])),
        tp=np.concatenate((zero, tp)),
        fp=np.concatenate((zero, fp)),
        n_pos=int(tp[-1]),
        n_neg=int(fp[-1]),
    )


def _tpr_at_fpr(roc: _Roc, target_fpr: float) -> float:
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(f"target_fpr must lie in [0, 1], got {target_fpr}")
    # fp / n_neg is correctly rounded, so an FPR that equals the target exactly (1/100 vs 0.01)
    # compares equal to it. TPR never decreases along the curve: the best allowed point is the
    # last one whose FPR is within the target; the first point (FPR 0) always qualifies.
    allowed = roc.fpr <= target_fpr
    return float(roc.tpr[allowed].max())


def _resolvable_tpr(roc: _Roc, target_fpr: float, n_neg: int) -> float | None:
    """TPR at ``target_fpr`` for a report, or None when fewer than ``1 / target_fpr`` non-members
    make the target unmeasurable (the empirical point would sit at FPR 0, whose real FPR is about
    ``1 / (n_neg + 1)``, above the target: reporting it would overstate the attack)."""
    if n_neg * target_fpr < 1 - 1e-9:
        return None
    return _tpr_at_fpr(roc, target_fpr)


def _best_index(roc: _Roc) -> int:
    """Index (into the curve) of the largest TPR - FPR; ties go to the smallest threshold.

    TPR - FPR = (tp * n_neg - fp * n_pos) / (n_pos * n_neg), compared exactly in integers. The
    leading +inf point scores 0, as does the last (lowest score) point, which comes later, so the
    answer is always a real score.
    """
    gain = roc.tp * roc.n_neg - roc.fp * roc.n_pos
    # argmax returns the first maximum; the curve runs from high to low thresholds
    return len(gain) - 1 - int(np.argmax(gain[::-1]))


def _threshold_metrics(members: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    if np.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    predicted = s >= threshold
    n_pos = int(members.sum())
    n_neg = len(members) - n_pos
    tp = int((predicted & members).sum())
    fp = int(predicted.sum()) - tp
    fn = n_pos - tp
    tn = n_neg - fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_pos if n_pos else 0.0
    specificity = tn / n_neg if n_neg else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "balanced_accuracy": (recall + specificity) / 2,
        "accuracy": (tp + tn) / len(members),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _bootstrap_auc_ci(
    members: np.ndarray, s: np.ndarray, n_boot: int, seed: int, alpha: float
) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    low, high = np.quantile(_bootstrap_aucs(members, s, n_boot, seed), [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _bootstrap_aucs(members: np.ndarray, s: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The AUCs of ``n_boot`` stratified bootstrap replicates."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    pos = s[members]
    neg = np.sort(s[~members])
    n_pos, n_neg = len(pos), len(neg)
    # For each member, the non-members strictly below it lie in neg[:lo] and the tied ones in
    # neg[lo:hi]. A replicate draws members and non-members with replacement (counts c and d);
    # with D the cumulative sum of d over the sorted non-members, the replicate's Mann-Whitney
    # numerator is sum_i c_i * (D[lo_i] + D[hi_i]) / 2.
    lo = np.searchsorted(neg, pos, side="left")
    hi = np.searchsorted(neg, pos, side="right")
    rng = np.random.default_rng(seed)
    cum = np.zeros(n_neg + 1, dtype=np.int64)
    aucs = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        c = np.bincount(rng.integers(0, n_pos, size=n_pos), minlength=n_pos)
        d = np.bincount(rng.integers(0, n_neg, size=n_neg), minlength=n_neg)
        np.cumsum(d, out=cum[1:])
        aucs[b] = np.dot(c, cum[lo] + cum[hi]) / (2.0 * n_pos * n_neg)
    return aucs


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical ROC curve: ``(fpr, tpr, thresholds)`` at every distinct score.

    The attack predicts "member" when ``score >= threshold``. Thresholds run from ``+inf``
    (nothing predicted member: the point (0, 0)) down through every distinct score, highest
    first; the last one is the lowest score, where everything is predicted member: (1, 1).
    Tied scores switch together and form one point (no interpolation inside ties). This is
    ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``.
    """
    roc = _roc(*_validate(labels, scores))
    return roc.fpr, roc.tpr, roc.thresholds


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The highest TPR among ROC points whose FPR is at most ``target_fpr``.

    No interpolation between points: the honest, conservative convention of Carlini et al.
    (2022). The FPR is counted in whole non-members: with ``n`` non-members, a target allows
    ``floor(target_fpr * n)`` false positives (100 non-members: 0.01 allows one, 0.001 none).
    With fewer than ``1 / target_fpr`` non-members the only achievable point within the target
    may be FPR = 0, so the value measures "members found before the first false positive"; that
    is stricter than the target and noisy. Report low-FPR numbers only with enough non-members
    (at least ``10 / target_fpr`` gives about ten allowed false positives).
    """
    return _tpr_at_fpr(_roc(*_validate(labels, scores)), target_fpr)


def advantage(labels: np.ndarray, scores: np.ndarray) -> float:
    """Attacker membership advantage: the maximum over thresholds of TPR - FPR (Yeom et al.).

    Never negative: the threshold +inf gives TPR = FPR = 0. Equals 2 * balanced accuracy - 1 at
    the best threshold.
    """
    roc = _roc(*_validate(labels, scores))
    i = _best_index(roc)
    return float(roc.tpr[i] - roc.fpr[i])


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold that maximises balanced accuracy; ties go to the smallest such threshold.

    Candidates are the observed scores (member iff ``score >= threshold``), so the answer is
    always one of ``scores``. Balanced accuracy is (TPR + 1 - FPR) / 2, so this is also the
    threshold of the attacker advantage. Use it to fix a threshold on attack-training data and
    then apply it to held-out data (``threshold_metrics`` or ``score_attack(threshold=...)``);
    fitted and scored on the same data it is optimistic.
    """
    roc = _roc(*_validate(labels, scores))
    return float(roc.thresholds[_best_index(roc)])


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Balanced accuracy, accuracy, precision, recall and F1 of "member iff score >= threshold".

    Keys: ``balanced_accuracy``, ``accuracy``, ``precision``, ``recall``, ``f1``; a ratio with a
    zero denominator (precision with no predicted member) is 0.0, as scikit-learn's
    ``zero_division=0``. ``threshold`` may be any number, including +-inf.
    """
    members, s = _validate(labels, scores)
    return _threshold_metrics(members, s, float(threshold))


def bootstrap_auc_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile ``1 - alpha`` confidence interval of the AUC under a stratified bootstrap.

    Each of ``n_boot`` replicates resamples the members and the non-members separately, with
    replacement and at their original sizes, so every replicate has both classes and the class
    balance of the data. The AUC of a replicate is computed exactly (ties counted half) from
    cumulative counts, without re-sorting. Deterministic for a given ``seed`` (numpy's
    ``default_rng``). With the default 200 replicates the interval ends carry Monte Carlo noise
    of roughly a tenth of the interval width; raise ``n_boot`` for publication numbers.
    """
    members, s = _validate(labels, scores)
    return _bootstrap_auc_ci(members, s, n_boot, seed, alpha)


@dataclass(frozen=True)
class AttackScore:
    """Every metric of one membership-inference attack on held-out data."""

    auc: float
    auc_ci: tuple[float, float]
    balanced_accuracy: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    advantage: float
    # keys str(target) for each of FPR_TARGETS ("0.01", "0.001"); None when there are fewer than
    # 1 / target non-members to measure it
    tpr_at_fpr: dict[str, float | None]
    n_members: int
    n_nonmembers: int


def _rank_metrics(
    members: np.ndarray, s: np.ndarray, n_boot: int, seed: int
) -> tuple[float, tuple[float, float], float, dict[str, float], float]:
    """AUC, its bootstrap interval, the advantage, TPR at each of FPR_TARGETS, best threshold."""
    auc = rank_auc(members, s)
    if auc is None:  # unreachable after _validate, which checks both classes
        raise ValueError("membership metrics needs both members and non-members")
    roc = _roc(members, s)
    i = _best_index(roc)
    return (
        auc,
        _bootstrap_auc_ci(members, s, n_boot, seed, 0.05),
        float(roc.tpr[i] - roc.fpr[i]),
        {str(t): _resolvable_tpr(roc, t, int((~members).sum())) for t in FPR_TARGETS},
        float(roc.thresholds[i]),
    )


def score_attack(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> AttackScore:
    """All metrics of one attack on held-out data.

    The rank metrics (AUC and its 95% stratified-bootstrap interval, advantage, TPR at each of
    ``FPR_TARGETS``) need no threshold. The threshold metrics use ``threshold``; with None it is
    ``best_threshold`` of these same data, which is optimistic (the threshold is fitted on the
    data it is scored on): callers that can should pass a threshold fitted on attack-training
    data.
    """
    members, s = _validate(labels, scores)
    auc, ci, adv, tprs, fitted = _rank_metrics(members, s, n_boot, seed)
    if threshold is None:
        threshold = fitted
    thr = _threshold_metrics(members, s, float(threshold))
    n_members = int(members.sum())
    return AttackScore(
        auc=auc,
        auc_ci=ci,
        advantage=adv,
        tpr_at_fpr=tprs,
        n_members=n_members,
        n_nonmembers=len(members) - n_members,
        **thr,
    )


def combine_folds(
    fold_labels: list[np.ndarray],
    fold_scores: list[np.ndarray],
    thresholds: list[float],
    *,
    n_boot: int = 200,
    seed: int = 0,
    pooled: bool = True,
) -> AttackScore:
    """Pool the held-out predictions of several cross-validation folds into one AttackScore.

    With ``pooled`` the rank metrics (AUC, its interval, TPR at each of ``FPR_TARGETS``,
    advantage) are computed on the pooled scores, exactly as ``score_attack`` on the
    concatenation; this assumes the folds' scores are on one scale (one scoring function for
    every fold). Scores of models fitted separately per fold are not (measured: a logistic
    regression on the loss, AUC 0.92-0.95 in every fold, pooled to 0.87), so for those pass
    ``pooled=False``: each rank metric is then computed per fold and averaged, weighted by fold
    size, and the interval comes from bootstrap replicates that average the folds' replicate
    AUCs in the same way. The
    threshold metrics are computed per fold with that fold's own threshold (fitted on that
    fold's attack-training data) and averaged, weighted by fold size. Each fold needs both
    members and non-members.
    """
    if not len(fold_labels) == len(fold_scores) == len(thresholds):
        raise ValueError(
            "fold_labels, fold_scores and thresholds differ in length "
            f"({len(fold_labels)}, {len(fold_scores)}, {len(thresholds)})"
        )
    if not fold_labels:
        raise ValueError("combine_folds needs at least one fold")
    folds = []
    for k, (labels, scores) in enumerate(zip(fold_labels, fold_scores, strict=True)):
        try:
            folds.append(_validate(labels, scores))
        except ValueError as exc:
            raise ValueError(f"fold {k}: {exc}") from None
    members = np.concatenate([m for m, _ in folds])
    s = np.concatenate([x for _, x in folds])
    sizes = np.array([len(m) for m, _ in folds], dtype=np.float64)
    if pooled:
        auc, ci, adv, tprs, _ = _rank_metrics(members, s, n_boot, seed)
    else:
        weights = sizes / sizes.sum()
        per = [_rank_metrics(m, x, 1, seed) for m, x in folds]
        auc = float(np.dot(weights, [p[0] for p in per]))
        adv = float(np.dot(weights, [p[2] for p in per]))
        tprs = {
            key: None
            if any(p[3][key] is None for p in per)
            else float(np.dot(weights, [p[3][key] for p in per]))
            for key in per[0][3]
        }
        replicates = np.vstack(
            [_bootstrap_aucs(m, x, n_boot, seed + k) for k, (m, x) in enumerate(folds)]
        )
        low, high = np.quantile(weights @ replicates, [0.025, 0.975])
        ci = (float(low), float(high))
    per_fold = [
        _threshold_metrics(m, x, float(t)) for (m, x), t in zip(folds, thresholds, strict=True)
    ]
    averaged = {
        key: float(np.dot(sizes, [f[key] for f in per_fold]) / sizes.sum()) for key in per_fold[0]
    }
    n_members = int(members.sum())
    return AttackScore(
        auc=auc,
        auc_ci=ci,
        advantage=adv,
        tpr_at_fpr=tprs,
        n_members=n_members,
        n_nonmembers=len(members) - n_members,
        **averaged,
    )
