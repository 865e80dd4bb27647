"""Tests of codeaudit.membership.metrics: hand computations, sklearn equivalence, edge cases."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from codeaudit.membership.metrics import (
    FPR_TARGETS,
    AttackScore,
    advantage,
    best_threshold,
    bootstrap_auc_ci,
    combine_folds,
    roc_points,
    score_attack,
    threshold_metrics,
    tpr_at_fpr,
)

# Worked example used by several tests. Members score 0.9, 0.7, 0.4; non-members 0.7, 0.3, 0.1
# (one member ties with one non-member at 0.7). P = 3 members, N = 3 non-members.
HAND_LABELS = np.array([1, 0, 1, 1, 0, 0])
HAND_SCORES = np.array([0.9, 0.7, 0.7, 0.4, 0.3, 0.1])


# --------------------------------------------------------------------------------------------
# hand-computed cases
# --------------------------------------------------------------------------------------------


def test_roc_points_by_hand_with_a_tie() -> None:
    fpr, tpr, thr = roc_points(HAND_LABELS, HAND_SCORES)
    # threshold  predicted member (score >= thr)       tp fp   (fpr, tpr)
    # +inf       none                                   0  0   (0, 0)
    # 0.9        0.9m                                   1  0   (0, 1/3)
    # 0.7        0.9m 0.7m 0.7n   (tie: one point)      2  1   (1/3, 2/3)
    # 0.4        + 0.4m                                 3  1   (1/3, 1)
    # 0.3        + 0.3n                                 3  2   (2/3, 1)
    # 0.1        + 0.1n                                 3  3   (1, 1)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.7, 0.4, 0.3, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1, 1])


def test_roc_points_all_scores_tied_is_the_diagonal_in_one_step() -> None:
    fpr, tpr, thr = roc_points(np.array([1, 0, 1, 0]), np.full(4, 0.5))
    np.testing.assert_array_equal(thr, [np.inf, 0.5])
    np.testing.assert_array_equal(fpr, [0, 1])
    np.testing.assert_array_equal(tpr, [0, 1])


def test_rank_metrics_by_hand() -> None:
    # AUC over the 9 (member, non-member) pairs, ties counting half:
    #   0.9 beats 0.7, 0.3, 0.1          -> 3
    #   0.7 ties 0.7, beats 0.3, 0.1     -> 2.5
    #   0.4 loses to 0.7, beats 0.3, 0.1 -> 2
    #   AUC = 7.5 / 9
    result = score_attack(HAND_LABELS, HAND_SCORES)
    assert result.auc == pytest.approx(7.5 / 9)
    # TPR - FPR at the points above: 0, 1/3, 1/3, 2/3, 1/3, 0 -> advantage 2/3 (threshold 0.4)
    assert advantage(HAND_LABELS, HAND_SCORES) == pytest.approx(2 / 3)
    assert result.advantage == pytest.approx(2 / 3)
    assert best_threshold(HAND_LABELS, HAND_SCORES) == 0.4
    # TPR at FPR <= target: only the points with FPR 0 qualify below 1/3 -> best TPR 1/3
    assert tpr_at_fpr(HAND_LABELS, HAND_SCORES, 0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr(HAND_LABELS, HAND_SCORES, 0.3) == pytest.approx(1 / 3)
    # FPR 1/3 <= 0.34: the points at 0.7 and 0.4 qualify -> TPR 1 (not 2/3)
    assert tpr_at_fpr(HAND_LABELS, HAND_SCORES, 0.34) == pytest.approx(1.0)
    assert tpr_at_fpr(HAND_LABELS, HAND_SCORES, 0.0) == pytest.approx(1 / 3)
    # in a report, 3 non-members cannot measure a 1% or 0.1% FPR
    assert result.tpr_at_fpr == {"0.01": None, "0.001": None}
    assert (result.n_members, result.n_nonmembers) == (3, 3)


def test_threshold_metrics_by_hand() -> None:
    m = threshold_metrics(HAND_LABELS, HAND_SCORES, 0.4)
    # member iff score >= 0.4: 0.9m 0.7n 0.7m 0.4m -> tp=3 fp=1; 0.3n 0.1n -> tn=2 fn=0
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 0))  # 2tp / (2tp + fp + fn) = 6/7
    assert m["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)  # (TPR + TNR) / 2 = 5/6
    assert set(m) == {"balanced_accuracy", "accuracy", "precision", "recall", "f1"}

    m = threshold_metrics(HAND_LABELS, HAND_SCORES, 0.7)
    # >= 0.7: 0.9m 0.7n 0.7m -> tp=2 fp=1 tn=2 fn=1 (the tie at 0.7 counts as member)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_threshold_metrics_zero_division_is_zero() -> None:
    # threshold above every score: nothing predicted member -> tp=fp=0, tn=3, fn=3
    m = threshold_metrics(HAND_LABELS, HAND_SCORES, 2.0)
    assert m == {
        "balanced_accuracy": 0.5,  # (0 + 1) / 2
        "accuracy": 0.5,  # 3 / 6
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }
    # threshold -inf: everything member -> tp=3 fp=3: precision 1/2, recall 1, f1 = 6/9
    m = threshold_metrics(HAND_LABELS, HAND_SCORES, -np.inf)
    assert m["precision"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.5)


def test_best_threshold_ties_go_to_the_smallest_threshold() -> None:
    # members 0.9, 0.6, 0.2; non-members 0.7, 0.3, 0.1
    # thr:  0.9   0.7   0.6   0.3   0.2   0.1
    # tp:   1     1     2     2     3     3
    # fp:   0     1     1     2     2     3
    # T-F:  1/3   0     1/3   0     1/3   0     -> three-way tie (in floats 1/3 - 0 and
    # 2/3 - 1/3 even differ in the last bit); the smallest threshold, 0.2, wins.
    labels = np.array([1, 0, 1, 0, 1, 0])
    scores = np.array([0.9, 0.7, 0.6, 0.3, 0.2, 0.1])
    assert best_threshold(labels, scores) == 0.2
    assert advantage(labels, scores) == pytest.approx(1 / 3)
    # score_attack without a threshold uses exactly that threshold
    r = score_attack(labels, scores)
    # >= 0.2: tp=3 fp=2 tn=1 fn=0 -> BA (1 + 1/3) / 2 = 2/3, precision 3/5
    assert r.balanced_accuracy == pytest.approx(2 / 3)
    assert r.precision == pytest.approx(3 / 5)


def test_best_threshold_ties_are_exact_not_floating_point() -> None:
    # P = N = 5. Descending: m10 m9 n8 m7 n6 n5 n4 n3 m2 m1
    # thr 9: tp=2 fp=0 -> 2/5 - 0   = 0.4  (float 0.4)
    # thr 7: tp=3 fp=1 -> 3/5 - 1/5 = 0.4  (float 0.6 - 0.2 = 0.39999999999999997)
    # Exactly tied best; the smallest threshold is 7 (a float comparison would pick 9).
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 1])
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
    assert best_threshold(labels, scores) == 7.0
    assert advantage(labels, scores) == pytest.approx(0.4)


def test_best_threshold_is_a_score_and_balanced_accuracy_is_half_advantage_plus_half() -> None:
    labels = np.array([1, 1, 0, 1, 0, 0, 0])
    scores = np.array([5.0, 3.0, 4.0, 2.0, 1.0, 1.0, 0.0])
    thr = best_threshold(labels, scores)
    assert thr in scores
    ba = threshold_metrics(labels, scores, thr)["balanced_accuracy"]
    assert ba == pytest.approx((1 + advantage(labels, scores)) / 2)


# --------------------------------------------------------------------------------------------
# TPR at low FPR: the counting convention
# --------------------------------------------------------------------------------------------


def _hundred_negatives() -> tuple[np.ndarray, np.ndarray]:
    # 100 non-members with distinct scores 0.00, 0.01, ..., 0.99.
    # 100 members: 10 above every non-member (0.995), 10 between the top two non-members
    # (0.985), 80 at -1 (below everything).
    neg = np.arange(100) / 100
    pos = np.concatenate([np.full(10, 0.995), np.full(10, 0.985), np.full(80, -1.0)])
    labels = np.concatenate([np.ones(100, dtype=int), np.zeros(100, dtype=int)])
    return labels, np.concatenate([pos, neg])


def test_tpr_at_fpr_with_100_negatives() -> None:
    labels, scores = _hundred_negatives()
    # target 0.01 * 100 negatives = 1 false positive allowed: threshold 0.985 -> 20 members
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.20)
    # target 0.001 allows 0.1 false positives = none: threshold 0.995 -> 10 members
    assert tpr_at_fpr(labels, scores, 0.001) == pytest.approx(0.10)
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(0.10)
    # 0.02 allows 2 false positives, but no member lies between 0.98 and 0.97 -> still 0.20
    assert tpr_at_fpr(labels, scores, 0.02) == pytest.approx(0.20)
    # just under 0.01 allows none (no rounding up)
    assert tpr_at_fpr(labels, scores, 0.0099) == pytest.approx(0.10)
    r = score_attack(labels, scores)
    assert r.tpr_at_fpr == {"0.01": pytest.approx(0.2), "0.001": None}  # 0.1% needs 1,000


def test_tpr_at_fpr_a_member_tied_with_a_negative_costs_that_false_positive() -> None:
    labels, scores = _hundred_negatives()
    scores = scores.copy()
    scores[:10] = 0.99  # the 10 top members now tie with the top non-member (0.99)
    # at 0.99: tp=10, fp=1 (one point); at 0.985: tp=20, fp=1. Target 0.001 allows fp=0: no
    # member is above every non-member any more -> 0.
    assert tpr_at_fpr(labels, scores, 0.001) == 0.0
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.20)


def test_tpr_at_fpr_with_too_few_negatives_falls_back_to_fpr_zero() -> None:
    # 50 non-members: 1% of 50 is half a false positive, so only FPR = 0 qualifies.
    neg = np.linspace(0.0, 0.49, 50)
    # one member above every non-member, one between the top two (0.49 and 0.48), two low
    pos = np.array([0.9, 0.485, 0.1, 0.05])
    labels = np.concatenate([np.ones(4, dtype=int), np.zeros(50, dtype=int)])
    scores = np.concatenate([pos, neg])
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(1 / 4)
    # 1 of 50 = 0.02: one false positive (0.49) allowed, which lets 0.485 in -> 2/4
    assert tpr_at_fpr(labels, scores, 0.02) == pytest.approx(2 / 4)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_tpr_at_fpr_rejects_targets_outside_zero_one(bad: float) -> None:
    with pytest.raises(ValueError, match="target_fpr"):
        tpr_at_fpr(HAND_LABELS, HAND_SCORES, bad)


# --------------------------------------------------------------------------------------------
# equivalence with scikit-learn on random data
# --------------------------------------------------------------------------------------------


@st.composite
def attack_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Random labels with both classes and scores that often tie (small integer grid) or not."""
    n = draw(st.integers(2, 40))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    labels[0], labels[1] = 1, 0
    if draw(st.booleans()):
        scores = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    else:
        scores = draw(
            st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=n, max_size=n)
        )
    order = draw(st.permutations(range(n)))
    return np.array(labels)[order], np.array(scores, dtype=np.float64)[order]


@settings(max_examples=80, deadline=None)
@given(attack_data())
def test_roc_and_auc_equal_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, scores = data
    fpr, tpr, thr = roc_points(labels, scores)
    sk_fpr, sk_tpr, sk_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])  # sklearn's first threshold is inf too
    assert thr[0] == np.inf
    r = score_attack(labels, scores, n_boot=20)
    assert r.auc == pytest.approx(roc_auc_score(labels, scores))
    # derived quantities from sklearn's curve
    for target in (0.0, 0.01, 0.1, 0.25, 0.5, 1.0):
        expected = sk_tpr[sk_fpr <= target].max()
        assert tpr_at_fpr(labels, scores, target) == pytest.approx(expected)
    # advantage: drop_intermediate only drops collinear points, so it changes no maximum
    d_fpr, d_tpr, _ = roc_curve(labels, scores)
    assert r.advantage == pytest.approx(max(0.0, (d_tpr - d_fpr).max()))
    assert advantage(labels, scores) == pytest.approx((sk_tpr - sk_fpr).max())


@settings(max_examples=80, deadline=None)
@given(attack_data(), st.floats(-4, 4))
def test_threshold_metrics_equal_sklearn(data: tuple[np.ndarray, np.ndarray], thr: float) -> None:
    labels, scores = data
    pred = (scores >= thr).astype(int)
    m = threshold_metrics(labels, scores, thr)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, pred))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert m["precision"] == pytest.approx(precision_score(labels, pred, zero_division=0))
    assert m["recall"] == pytest.approx(recall_score(labels, pred, zero_division=0))
    assert m["f1"] == pytest.approx(f1_score(labels, pred, zero_division=0))


@settings(max_examples=80, deadline=None)
@given(attack_data())
def test_best_threshold_equals_exact_brute_force(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, scores = data
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos

    def exact_ba(t: float) -> Fraction:
        pred = scores >= t
        tp = int((pred & (labels == 1)).sum())
        tn = int((~pred & (labels == 0)).sum())
        return (Fraction(tp, n_pos) + Fraction(tn, n_neg)) / 2

    candidates = sorted(set(scores.tolist()))
    best = max(exact_ba(t) for t in candidates)
    expected = min(t for t in candidates if exact_ba(t) == best)
    assert best_threshold(labels, scores) == expected
    assert advantage(labels, scores) == pytest.approx(float(2 * best - 1))


# --------------------------------------------------------------------------------------------
# reference attacks
# --------------------------------------------------------------------------------------------


def test_perfect_attack() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([1, 0], 2000)
    scores = np.concatenate([rng.uniform(0.6, 1.0, 2000), rng.uniform(0.0, 0.5, 2000)])
    r = score_attack(labels, scores)
    assert r.auc == 1.0
    assert r.auc_ci == (1.0, 1.0)
    assert r.tpr_at_fpr == {"0.01": 1.0, "0.001": 1.0}
    assert r.advantage == 1.0
    assert r.balanced_accuracy == r.accuracy == r.precision == r.recall == r.f1 == 1.0
    # the threshold is the lowest member score: the smallest one that separates perfectly
    assert best_threshold(labels, scores) == scores[:2000].min()


def test_random_attack_on_large_n() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    labels = rng.permutation(np.repeat([1, 0], n // 2))
    scores = rng.normal(size=n)
    r = score_attack(labels, scores)
    assert r.auc == pytest.approx(0.5, abs=0.015)  # sd of the AUC ~ 0.004 here
    assert r.auc_ci[0] < 0.5 < r.auc_ci[1]
    assert r.auc_ci[1] - r.auc_ci[0] < 0.03
    # 10,000 non-members: 1% allows 100 false positives; a random attack finds ~1% of members
    assert 0.005 < r.tpr_at_fpr["0.01"] < 0.02
    assert r.tpr_at_fpr["0.001"] < 0.005
    assert r.advantage < 0.03
    assert (r.n_members, r.n_nonmembers) == (n // 2, n // 2)


def test_inverted_attack() -> None:
    labels = np.repeat([1, 0], 50)
    scores = np.concatenate([np.arange(50), np.arange(50) + 100]).astype(float)
    r = score_attack(labels, scores)
    assert r.auc == 0.0
    assert r.auc_ci == (0.0, 0.0)
    assert r.tpr_at_fpr == {"0.01": None, "0.001": None}  # 50 non-members: not measurable
    # every threshold has TPR <= FPR; the best (0) is reached at +inf and at the lowest score
    assert r.advantage == 0.0
    assert best_threshold(labels, scores) == 0.0  # the smallest of the tied thresholds
    assert r.balanced_accuracy == 0.5  # everything predicted member: TPR 1, TNR 0


def test_auc_is_invariant_under_monotone_transforms() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 300)
    labels[:2] = [0, 1]
    scores = rng.normal(size=300) + labels
    a = score_attack(labels, scores)
    b = score_attack(labels, np.exp(3 * scores))
    assert a.auc == pytest.approx(b.auc)
    assert a.auc_ci == pytest.approx(b.auc_ci)
    assert a.tpr_at_fpr == b.tpr_at_fpr
    assert a.advantage == pytest.approx(b.advantage)


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def _shifted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n members ~ N(1, 1) and n non-members ~ N(0, 1): AUC = Phi(1/sqrt(2)) ~ 0.76."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0], n)
    return labels, np.concatenate([rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)])


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    labels, scores = _shifted(300, 4)
    a = bootstrap_auc_ci(labels, scores, seed=7)
    assert bootstrap_auc_ci(labels, scores, seed=7) == a
    assert bootstrap_auc_ci(labels, scores, seed=8) != a
    assert score_attack(labels, scores, seed=7).auc_ci == a


def test_bootstrap_ci_brackets_the_auc_and_narrows_with_n() -> None:
    widths = []
    for n in (100, 10_000):
        labels, scores = _shifted(n, 5)
        r = score_attack(labels, scores)
        assert r.auc_ci[0] < r.auc < r.auc_ci[1]
        widths.append(r.auc_ci[1] - r.auc_ci[0])
    # the width shrinks as 1/sqrt(n): 100x the data, ~10x narrower
    assert widths[1] < widths[0] / 5
    # a smaller alpha gives a wider interval
    labels, scores = _shifted(100, 5)
    lo95, hi95 = bootstrap_auc_ci(labels, scores, n_boot=500)
    lo99, hi99 = bootstrap_auc_ci(labels, scores, n_boot=500, alpha=0.01)
    assert lo99 <= lo95 and hi95 <= hi99


def test_bootstrap_width_matches_the_delong_standard_error() -> None:
    # DeLong: var(AUC) ~ var_i(V10_i) / P + var_j(V01_j) / N with V10_i the share of non-members
    # below member i (ties half) and V01_j the share of members above non-member j. Resampling
    # only one class, or resampling the pairs wrongly, would miss this by ~30% or more.
    labels, scores = _shifted(400, 6)
    pos, neg = scores[labels == 1], scores[labels == 0]
    h = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    se = np.sqrt(h.mean(axis=1).var(ddof=1) / len(pos) + h.mean(axis=0).var(ddof=1) / len(neg))
    lo, hi = bootstrap_auc_ci(labels, scores, n_boot=2000)
    assert (hi - lo) / (2 * 1.959964 * se) == pytest.approx(1.0, abs=0.12)
    assert (lo + hi) / 2 == pytest.approx(h.mean(), abs=0.25 * se)


def test_bootstrap_is_stratified_and_counts_ties_half() -> None:
    # one member above 500 non-members: an unstratified resample would often lose the member;
    # a stratified one always keeps it, and every replicate has AUC exactly 1.
    labels = np.concatenate([[1], np.zeros(500, dtype=int)])
    scores = np.concatenate([[2.0], np.linspace(0, 1, 500)])
    assert bootstrap_auc_ci(labels, scores) == (1.0, 1.0)
    # every score tied: each replicate's AUC is exactly 1/2
    assert bootstrap_auc_ci(np.array([1, 1, 0, 0, 0]), np.ones(5)) == (0.5, 0.5)
    # member 0.5, non-members 0.2 and 0.8: replicate AUC is 1 ({0.2, 0.2}, p = 1/4), 0.5
    # (mixed, p = 1/2) or 0 ({0.8, 0.8}, p = 1/4); the 95% interval spans 0 to 1.
    assert bootstrap_auc_ci(np.array([1, 0, 0]), np.array([0.5, 0.2, 0.8]), n_boot=400) == (
        0.0,
        1.0,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"n_boot": 0}, "n_boot"), ({"alpha": 1.0}, "alpha")]
)
def test_bootstrap_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bootstrap_auc_ci(HAND_LABELS, HAND_SCORES, **kwargs)


# --------------------------------------------------------------------------------------------
# score_attack and combine_folds
# --------------------------------------------------------------------------------------------


def test_score_attack_uses_a_given_threshold() -> None:
    r = score_attack(HAND_LABELS, HAND_SCORES, threshold=0.7)
    assert r.precision == pytest.approx(2 / 3)  # see test_threshold_metrics_by_hand
    assert r.balanced_accuracy == pytest.approx(2 / 3)
    # the rank metrics do not depend on the threshold
    assert r.auc == score_attack(HAND_LABELS, HAND_SCORES).auc
    assert isinstance(r, AttackScore)
    assert set(r.tpr_at_fpr) == {str(t) for t in FPR_TARGETS} == {"0.01", "0.001"}


def test_combine_folds_by_hand() -> None:
    # fold 1: member 0.9, non-member 0.1, threshold 0.5 -> every metric 1
    # fold 2: members 0.2, 0.8, non-members 0.7, 0.1, threshold 0.5 -> tp=1 fp=1 tn=1 fn=1,
    #         every metric 1/2
    # weighted by fold size (2 and 4): (2 * 1 + 4 * 1/2) / 6 = 2/3
    r = combine_folds(
        [np.array([1, 0]), np.array([1, 1, 0, 0])],
        [np.array([0.9, 0.1]), np.array([0.2, 0.8, 0.7, 0.1])],
        [0.5, 0.5],
    )
    for key in ("balanced_accuracy", "accuracy", "precision", "recall", "f1"):
        assert getattr(r, key) == pytest.approx(2 / 3), key
    # pooled AUC: members 0.9, 0.2, 0.8 vs non-members 0.1, 0.7, 0.1:
    #   0.9 -> 3, 0.2 -> 2, 0.8 -> 3; AUC = 8/9
    assert r.auc == pytest.approx(8 / 9)
    assert (r.n_members, r.n_nonmembers) == (3, 3)


def test_combine_folds_pools_rank_metrics_like_score_attack_on_the_concatenation() -> None:
    rng = np.random.default_rng(9)
    labels, scores, thresholds = [], [], []
    for size in (500, 800, 1200):
        y = rng.integers(0, 2, size)
        labels.append(y)
        scores.append(np.round(rng.normal(size=size) + 0.8 * y, 2))  # rounded: ties
        thresholds.append(float(rng.normal(0.4, 0.1)))
    pooled = combine_folds(labels, scores, thresholds, n_boot=100, seed=3)
    concat = score_attack(np.concatenate(labels), np.concatenate(scores), n_boot=100, seed=3)
    assert pooled.auc == concat.auc
    assert pooled.auc_ci == concat.auc_ci
    assert pooled.tpr_at_fpr == concat.tpr_at_fpr
    assert pooled.advantage == concat.advantage
    assert (pooled.n_members, pooled.n_nonmembers) == (concat.n_members, concat.n_nonmembers)
    # threshold metrics: the size-weighted mean of each fold's metrics at its own threshold
    per_fold = [
        threshold_metrics(y, s, t) for y, s, t in zip(labels, scores, thresholds, strict=True)
    ]
    sizes = np.array([len(y) for y in labels])
    for key in per_fold[0]:
        expected = np.dot(sizes, [m[key] for m in per_fold]) / sizes.sum()
        assert getattr(pooled, key) == pytest.approx(expected)


def test_combine_folds_validation() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        combine_folds([HAND_LABELS], [HAND_SCORES], [0.5, 0.6])
    with pytest.raises(ValueError, match="at least one fold"):
        combine_folds([], [], [])
    with pytest.raises(ValueError, match=r"fold 1: .*needs both members and non-members"):
        combine_folds([HAND_LABELS, np.ones(3, dtype=int)], [HAND_SCORES, np.ones(3)], [0.5, 0.5])


# --------------------------------------------------------------------------------------------
# input validation and scale
# --------------------------------------------------------------------------------------------

ALL_FUNCTIONS = [
    roc_points,
    advantage,
    best_threshold,
    bootstrap_auc_ci,
    score_attack,
    lambda y, s: tpr_at_fpr(y, s, 0.01),
    lambda y, s: threshold_metrics(y, s, 0.5),
]


@pytest.mark.parametrize("fn", ALL_FUNCTIONS)
@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([1, 0, 1], [0.1, 0.2], "differ in length"),
        ([[1, 0]], [[0.1, 0.2]], "1-D"),
        ([1, 0, 1], [0.1, float("nan"), 0.3], "finite"),
        ([1, 0, 1], [0.1, float("inf"), 0.3], "finite"),
        ([1, 0, 1], [0.1, -float("inf"), 0.3], "finite"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "needs both members and non-members"),
        ([0, 0], [0.1, 0.2], "needs both members and non-members"),
        ([], [], "needs both members and non-members"),
        ([1, 0, 2], [0.1, 0.2, 0.3], "0 .*or 1"),
        ([1, 0, -1], [0.1, 0.2, 0.3], "0 .*or 1"),
        ([1, 0, 0.5], [0.1, 0.2, 0.3], "0 .*or 1"),
        (["1", "0"], [0.1, 0.2], "0 .*or 1"),
        ([1, 0], ["a", "b"], "scores must be numbers"),
    ],
)
def test_invalid_inputs_raise_value_error(
    fn: Callable[..., object], labels: list, scores: list, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        fn(np.array(labels), np.array(scores))


def test_boolean_and_float_labels_are_accepted() -> None:
    auc = score_attack(HAND_LABELS, HAND_SCORES).auc
    assert score_attack(HAND_LABELS.astype(bool), HAND_SCORES).auc == auc
    assert score_attack(HAND_LABELS.astype(float), HAND_SCORES).auc == auc
    assert score_attack(list(HAND_LABELS), list(HAND_SCORES)).auc == auc


def test_threshold_nan_is_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        threshold_metrics(HAND_LABELS, HAND_SCORES, float("nan"))


def test_hundred_thousand_samples_run() -> None:
    rng = np.random.default_rng(10)
    n = 100_000
    labels = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + 0.5 * labels
    r = score_attack(labels, scores)
    # AUC = Phi(0.5 / sqrt(2)) ~ 0.638
    assert r.auc == pytest.approx(0.638, abs=0.01)
    assert r.auc_ci[0] < r.auc < r.auc_ci[1]
    assert r.n_members + r.n_nonmembers == n


def test_unpooled_folds_average_per_fold_rank_metrics() -> None:
    from codeaudit.membership.metrics import combine_folds, score_attack

    rng = np.random.default_rng(3)
    labels = [np.r_[np.ones(50), np.zeros(50)].astype(int) for _ in range(2)]
    # the same ranking in both folds, but fold 2's scores live on a shifted scale
    base = rng.normal(size=100) + labels[0]
    scores = [base, base + 10.0]
    pooled = combine_folds(labels, scores, [0.0, 10.0], pooled=True)
    unpooled = combine_folds(labels, scores, [0.0, 10.0], pooled=False)
    per_fold = score_attack(labels[0], base)
    assert unpooled.auc == pytest.approx(per_fold.auc)
    assert unpooled.tpr_at_fpr == pytest.approx(per_fold.tpr_at_fpr)
    # pooling mixes scales: fold-2 non-members outrank fold-1 members
    assert pooled.auc < per_fold.auc - 0.05
    assert unpooled.auc_ci[0] < unpooled.auc < unpooled.auc_ci[1]
