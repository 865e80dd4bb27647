"""Per-member membership risk scores (``codeaudit membership --risk-scores FILE.jsonl``).

Three scores, each with a stated method, written one line per member:

* ``attack``: the strongest attack's membership score (what ``--top-risk`` ranks by), out of
  fold: each member is scored by an attack that did not learn from it.
* ``lira``: LiRA's per-sample likelihood ratio (Carlini et al. 2022, online variant): the log
  density of the target's logit-scaled confidence under the Gaussian fitted to the reference
  models that trained on the member, minus that under those that did not (``--references``).
* ``shapr``: SHAPr (Duddu, Szyller and Asokan 2021): the member's Shapley value to the utility of
  a k-nearest-neighbour classifier on the target model's representation (the embedding channel of
  :mod:`codeaudit.membership.features`), the utility being its accuracy on the non-members; the
  closed-form recursion of Jia et al. (2019) makes it exact in O(N_members * N_utility * log
  N_members) (:func:`knn_shapley`).

"High risk" for the first two: above every score but the top 1% of the non-members' (the members
that score caught at 1% FPR); for SHAPr: worth at least three fair shares of the utility (the
values add up to the k-NN accuracy, so the fair share is that accuracy over the members).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeaudit.membership.result import RiskCorrelation, RiskMethod, RiskSummary

RISK_FORMAT = 1
FPR = 0.01  # the attack scores' high-risk cut: what they catch at 1% FPR
HIGH_SHARES = 3  # SHAPr's high-risk cut: this many times the fair share of the utility
_BLOCK_ELEMENTS = 4_000_000  # distance entries sorted at once (32 MB of float64)

ATTACK_METHOD = (
    "the strongest attack's membership score (the one --top-risk ranks by), out of fold: each "
    "member scored by an attack model that did not train on it (a trained attack's folds each "
    "score on their own model's scale); higher: more exposed"
)
LIRA_METHOD = (
    "LiRA online (Carlini et al. 2022): log N(phi; mu_in, sd_in) - log N(phi; mu_out, sd_out), "
    "phi = log(p_y / (1 - p_y)) of the target, the Gaussians fitted per member to the reference "
    "models that did (in) and did not (out) train on it; higher: more exposed"
)
SHAPR_METHOD = (
    "SHAPr (Duddu, Szyller and Asokan 2021): the member's exact Shapley value to the accuracy of "
    "a k-nearest-neighbour classifier (Euclidean distance on the target model's embedding) on "
    "the non-members, by the closed-form recursion of Jia et al. (2019), averaged over the "
    "non-members; higher: more exposed (negative: the member's label disagrees with its "
    "unseen neighbours)"
)


def knn_shapley(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    k: int,
) -> np.ndarray:
    """The exact Shapley value of every training point to the utility U(S) = mean over the test
    points of (1/k) * (the number of the min(k, |S|) nearest points of S that carry the test
    point's label), U(empty) = 0 (Jia et al. 2019, Theorem 1). Nearest by Euclidean distance,
    ties to the lower index. The values sum to U(all training points)."""
    return knn_shapley_many(train, np.asarray(train_labels)[None, :], test, test_labels, k)[0]


def knn_shapley_many(
    train: np.ndarray,
    label_sets: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    k: int,
) -> np.ndarray:
    """:func:`knn_shapley` for several labellings of the same training points at the cost of one
    sort: ``label_sets`` [L, N] -> values [L, N]."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    label_sets = np.asarray(label_sets)
    test_labels = np.asarray(test_labels)
    n, n_test = len(train), len(test)
    if k < 1:
        raise ValueError("k must be at least 1")
    values = np.zeros((len(label_sets), n), dtype=np.float64)
    if n == 0 or n_test == 0:
        return values
    positions = np.arange(1, n, dtype=np.float64)  # 1-based positions 1..n-1
    step = np.minimum(k, positions) / (k * positions)
    square = (train * train).sum(axis=1)
    block = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n_test, block):
        part = test[start : start + block]
        # ||x - t||^2 less ||t||^2 (constant along a row: the order is the same).
        distance = square[None, :] - 2.0 * (part @ train.T)
        order = np.argsort(distance, axis=1, kind="stable")
        for row, labels in enumerate(label_sets):
            match = (labels[order] == test_labels[start : start + block, None]).astype(np.float64)
            sorted_values = np.empty_like(match)
            # The farthest point counts only in sets smaller than k: min(k, n) of n sizes.
            sorted_values[:, -1] = match[:, -1] * min(k, n) / (n * k)
            # s_i = s_{i+1} + (match_i - match_{i+1}) * min(k, i) / (k i), from the farthest in.
            increments = (match[:, :-1] - match[:, 1:]) * step
            sorted_values[:, :-1] = (
                sorted_values[:, -1:] + np.cumsum(increments[:, ::-1], axis=1)[:, ::-1]
            )
            unsorted = np.empty_like(sorted_values)
            np.put_along_axis(unsorted, order, sorted_values, axis=1)
            values[row] += unsorted.sum(axis=0)
    return values / n_test


def knn_accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, k: int
) -> float:
    """U(all): the utility whose Shapley values :func:`knn_shapley` computes (the same
    neighbours, the same tie rule)."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if len(train) == 0 or len(test) == 0:
        return 0.0
    distance = (train * train).sum(axis=1)[None, :] - 2.0 * (test @ train.T)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    hits = np.asarray(train_labels)[nearest] == np.asarray(test_labels)[:, None]
    return float(hits.sum(axis=1).mean() / k)


def ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank, percentile) of each score: rank 1 is the highest (ties to the earlier member);
    percentile 100 the highest, 0 the lowest, ties sharing their average."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(1, n + 1)
    if n == 1:
        return rank, np.full(1, 100.0)
    return rank, 100.0 * (rankdata(scores, method="average") - 1) / (n - 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return round(float(spearmanr(a, b).statistic), 4)


def fpr_cut(nonmember_scores: np.ndarray, fpr: float = FPR) -> float:
    """The score that at most ``fpr`` of the non-members exceed (the highest non-member score
    when there are fewer than 1/fpr of them)."""
    ordered = np.sort(np.asarray(nonmember_scores, dtype=np.float64))[::-1]
    return float(ordered[min(len(ordered) - 1, int(np.floor(fpr * len(ordered))))])


def caught(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float = FPR) -> np.ndarray:
    """Members strictly above :func:`fpr_cut`: those the score identifies at ``fpr``."""
    return np.asarray(member_scores, dtype=np.float64) > fpr_cut(nonmember_scores, fpr)


@dataclass(frozen=True)
class Score:
    """One method's scores on the members (``values`` None: not available, ``detail`` says
    why) and who it puts at high risk."""

    name: str
    method: str
    detail: str
    high_rule: str
    values: np.ndarray | None = None
    high: np.ndarray | None = None
    cut: float | None = None  # the score "high" starts above (at or above for SHAPr)

    def summary(self) -> RiskMethod:
        return RiskMethod(
            name=self.name,
            method=self.method,
            available=self.values is not None,
            detail=self.detail,
            high_risk=None if self.high is None else int(self.high.sum()),
            high_rule=self.high_rule,
        )


def attack_score(evaluated: Sequence[Any], best: Any, n_members: int, n_all: int) -> Score:
    rule = f"caught at {FPR:.0%} FPR: above all but the top {FPR:.0%} of the non-members' scores"
    name = f"{best.attack} on {best.features}"
    found = next(
        (
            ev
            for ev in evaluated
            if ev.attack == best.attack and "+".join(ev.features) == best.features
        ),
        None,
    )
    if found is None or len(found.scores) != n_all:
        return Score("attack", ATTACK_METHOD, f"{name} scored only a sample of the members", rule)
    scores = np.asarray(found.scores, dtype=np.float64)
    members, nonmembers = scores[:n_members], scores[n_members:]
    return Score(
        "attack",
        ATTACK_METHOD,
        name,
        rule,
        members,
        caught(members, nonmembers),
        fpr_cut(nonmembers),
    )


def lira_score(evaluated: Sequence[Any], n_members: int, n_all: int, references: int) -> Score:
    rule = f"caught at {FPR:.0%} FPR: above all but the top {FPR:.0%} of the non-members' scores"
    found = next((ev for ev in evaluated if ev.attack == "lira-online"), None)
    if found is None or len(found.scores) != n_all:
        why = (
            "not run: no reference models (--references)"
            if not references
            else "not run: the model exposes no scores"
        )
        return Score("lira", LIRA_METHOD, why, rule)
    scores = np.asarray(found.scores, dtype=np.float64)
    members, nonmembers = scores[:n_members], scores[n_members:]
    return Score(
        "lira",
        LIRA_METHOD,
        f"{references} reference models",
        rule,
        members,
        caught(members, nonmembers),
        fpr_cut(nonmembers),
    )


def shapr_score(
    f_members: Any, f_nonmembers: Any, usable: frozenset[str], k: int
) -> tuple[Score, float | None]:
    """SHAPr values of the members and the k-NN accuracy they share out."""
    rule = (
        f"worth at least {HIGH_SHARES} fair shares: a value of {HIGH_SHARES} x the k-NN "
        "accuracy / the number of members or more (the values add up to that accuracy)"
    )
    if "embedding" not in usable:
        return Score("shapr", SHAPR_METHOD, "not run: the model exposes no embedding", rule), None
    values = knn_shapley(
        f_members.embeddings, f_members.labels, f_nonmembers.embeddings, f_nonmembers.labels, k
    )
    utility = float(values.sum())
    cut = HIGH_SHARES * utility / max(1, len(values))
    high = (values >= cut) & (values > 0)
    detail = f"k = {k}, utility: k-NN accuracy {utility:.3f} on {len(f_nonmembers)} non-members"
    return Score("shapr", SHAPR_METHOD, detail, rule, values, high, cut), utility


def _entry(score: Score, index: int, rank: np.ndarray, pct: np.ndarray) -> dict[str, Any] | None:
    if score.values is None or score.high is None:
        return None
    value = float(score.values[index])
    return {
        "score": float(f"{value:.6g}") if np.isfinite(value) else None,
        "rank": int(rank[index]),
        "percentile": round(float(pct[index]), 2),
        "high": bool(score.high[index]),
    }


def risk_file(
    scores: Sequence[Score],
    ids: Sequence[str],
    labels: np.ndarray,
    header: dict[str, Any],
) -> bytes:
    """The JSON Lines file: a header line (``methods``: each score's method, details and
    high-risk rule), then one line per member: ``id``, ``label`` and per method ``score``,
    ``rank`` (1: most exposed), ``percentile`` (100: most exposed) and ``high``, or null."""
    ranked = {
        s.name: ranks(np.nan_to_num(s.values, nan=-np.inf)) for s in scores if s.values is not None
    }
    first = {
        **header,
        "methods": {
            s.name: {
                "method": s.method,
                "available": s.values is not None,
                "detail": s.detail,
                "high_risk": s.high_rule,
                "cut": None if s.cut is None else float(f"{s.cut:.6g}"),
            }
            for s in scores
        },
    }
    lines = [json.dumps(first, ensure_ascii=False, allow_nan=False)]
    for i, member in enumerate(ids):
        line: dict[str, Any] = {"id": member, "label": int(labels[i])}
        for s in scores:
            line[s.name] = _entry(s, i, *ranked[s.name]) if s.name in ranked else None
        lines.append(json.dumps(line, ensure_ascii=False, allow_nan=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def decile_catch(values: np.ndarray, caught_members: np.ndarray) -> tuple[float, float]:
    """Share of members caught among the top and the bottom tenth by ``values`` (at least
    one member each; ties to the earlier member)."""
    n = len(values)
    tenth = max(1, n // 10)
    order = np.argsort(-values, kind="stable")
    return (
        round(float(caught_members[order[:tenth]].mean()), 4),
        round(float(caught_members[order[-tenth:]].mean()), 4),
    )


def member_risk(
    evaluated: Sequence[Any],
    best: Any,
    f_members: Any,
    f_nonmembers: Any,
    usable: frozenset[str],
    config: Any,
) -> tuple[RiskSummary, bytes]:
    """Every member's three scores: the summary for the report and the file's bytes."""
    n_members = len(f_members)
    n_all = n_members + len(f_nonmembers)
    shapr, utility = shapr_score(f_members, f_nonmembers, usable, config.shapr_k)
    scores = [
        attack_score(evaluated, best, n_members, n_all),
        lira_score(evaluated, n_members, n_all, config.references),
        shapr,
    ]
    header = {
        "codeaudit": "membership risk scores",
        "format": RISK_FORMAT,
        "members": str(config.members),
        "nonmembers": str(config.nonmembers),
        "n_members": n_members,
        "n_nonmembers": len(f_nonmembers),
        "shapr_k": config.shapr_k,
    }
    data = risk_file(scores, f_members.ids, f_members.labels, header)
    available = [s for s in scores if s.values is not None]
    correlations = tuple(
        RiskCorrelation(a.name, b.name, spearman(a.values, b.values))  # type: ignore[arg-type]
        for i, a in enumerate(available)
        for b in available[i + 1 :]
    )
    top = bottom = None
    if scores[0].high is not None and shapr.values is not None and n_members >= 10:
        top, bottom = decile_catch(shapr.values, scores[0].high)
    summary = RiskSummary(
        path=str(config.risk_scores),
        n_members=n_members,
        n_utility=len(f_nonmembers),
        shapr_k=config.shapr_k,
        shapr_utility=None if utility is None else round(utility, 6),
        methods=tuple(s.summary() for s in scores),
        correlations=correlations,
        caught_top_shapr=top,
        caught_bottom_shapr=bottom,
    )
    return summary, data
