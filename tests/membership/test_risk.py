"""Per-member risk scores (:mod:`codeaudit.membership.risk`): the k-NN Shapley closed form
against exact enumeration, ranks, the high-risk cuts."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from codeaudit.membership import risk
from codeaudit.membership.risk import caught, knn_accuracy, knn_shapley, knn_shapley_many, ranks


def _utility(subset: list[int], train: np.ndarray, y: np.ndarray, test: np.ndarray,
             ty: np.ndarray, k: int) -> float:  # fmt: skip
    """U(S), written independently of the code under test: the mean over test points of the
    share of the k nearest members of S (true Euclidean distance, ties to the lower index)
    that carry the test point's label; 0 for the empty set."""
    if not subset:
        return 0.0
    total = 0.0
    for point, label in zip(test, ty, strict=True):
        near = sorted(subset, key=lambda i: (float(np.linalg.norm(train[i] - point)), i))[:k]
        total += sum(1.0 for i in near if y[i] == label) / k
    return total / len(test)


def _brute_shapley(train: np.ndarray, y: np.ndarray, test: np.ndarray, ty: np.ndarray,
                   k: int) -> np.ndarray:  # fmt: skip
    """The Shapley value by its definition: the mean marginal contribution over all n!
    orders."""
    n = len(train)
    values = np.zeros(n)
    cache: dict[frozenset[int], float] = {}

    def u(s: frozenset[int]) -> float:
        if s not in cache:
            cache[s] = _utility(sorted(s), train, y, test, ty, k)
        return cache[s]

    for order in itertools.permutations(range(n)):
        before: frozenset[int] = frozenset()
        for i in order:
            after = before | {i}
            values[i] += u(after) - u(before)
            before = after
    return values / math.factorial(n)


@pytest.mark.parametrize("k", [1, 2, 3, 6, 9])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_exact_enumeration(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    test = rng.normal(size=(5, 3))
    ty = rng.integers(0, 2, size=5)
    exact = _brute_shapley(train, y, test, ty, k)
    closed = knn_shapley(train, y, test, ty, k)
    np.testing.assert_allclose(closed, exact, atol=1e-12)
    # Efficiency: the values share out the utility of the whole set.
    assert closed.sum() == pytest.approx(knn_accuracy(train, y, test, ty, k), abs=1e-12)
    assert closed.sum() == pytest.approx(_utility(list(range(6)), train, y, test, ty, k))


def test_ties_go_to_the_lower_index_like_the_utility() -> None:
    train = np.array([[0.0], [0.0], [1.0], [1.0], [3.0], [-2.0]])  # two pairs at equal distance
    y = np.array([1, 0, 0, 1, 1, 0])
    test = np.array([[0.0], [1.0], [0.5]])
    ty = np.array([1, 1, 0])
    for k in (1, 2, 4):
        np.testing.assert_allclose(
            knn_shapley(train, y, test, ty, k), _brute_shapley(train, y, test, ty, k), atol=1e-12
        )


def test_blocks_and_labellings_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    train, test = rng.normal(size=(40, 8)), rng.normal(size=(33, 8))
    y, ty = rng.integers(0, 2, 40), rng.integers(0, 2, 33)
    other = rng.permutation(y)
    whole = knn_shapley_many(train, np.stack([y, other]), test, ty, 3)
    monkeypatch.setattr(risk, "_BLOCK_ELEMENTS", 7 * 40)  # 7 test points per block
    blocked = knn_shapley_many(train, np.stack([y, other]), test, ty, 3)
    np.testing.assert_allclose(blocked, whole, atol=1e-12)
    np.testing.assert_allclose(whole[1], knn_shapley(train, other, test, ty, 3), atol=1e-12)


def test_the_sole_member_of_a_rare_group_is_worth_most() -> None:
    """What SHAPr measures (Feldman's long tail): a member that alone represents a group the
    unseen data also holds carries those predictions; a member with a twin shares them, a
    member whose label its neighbours contradict is worth less than nothing."""
    rng = np.random.default_rng(0)
    common0 = rng.normal(0, 0.3, size=(20, 2))
    common1 = rng.normal(0, 0.3, size=(20, 2)) + np.array([4, 0])
    rare = np.array([[0.0, 8.0]])  # the only member of its group
    twins = np.array([[8.0, 8.0], [8.0, 8.0]])  # a member and its duplicate
    wrong = np.array([[0.1, 0.1]])  # labelled 1 among the 0s
    train = np.vstack([common0, common1, rare, twins, wrong])
    y = np.r_[np.zeros(20), np.ones(20), [1], [1, 1], [1]].astype(int)
    test = np.vstack(
        [
            rng.normal(0, 0.3, size=(20, 2)),
            rng.normal(0, 0.3, size=(20, 2)) + np.array([4, 0]),
            rng.normal(0, 0.2, size=(5, 2)) + np.array([0, 8]),
            rng.normal(0, 0.2, size=(5, 2)) + np.array([8, 8]),
        ]
    )
    ty = np.r_[np.zeros(20), np.ones(20), np.ones(5), np.ones(5)].astype(int)
    values = knn_shapley(train, y, test, ty, 1)
    typical = np.median(values[:40])
    assert values[40] > values[41] > typical and values[40] > values[42] > typical
    assert values[41] == pytest.approx(values[42], abs=1e-12)  # symmetric: the twins share
    assert values[40] > values[41] + values[42]
    assert values[43] < 0 < typical


def test_ranks_and_percentiles() -> None:
    rank, pct = ranks(np.array([0.2, 0.9, 0.2, -1.0]))
    assert rank.tolist() == [2, 1, 3, 4]  # ties to the earlier member
    assert pct.tolist() == pytest.approx([50.0, 100.0, 50.0, 0.0])
    assert ranks(np.array([3.0]))[1].tolist() == [100.0]


def test_caught_is_the_one_percent_fpr_cut() -> None:
    nonmembers = np.arange(200, dtype=float)  # the top 1% are 198 and 199: the cut is 197
    members = np.array([197.5, 197.0, 198.5, 250.0])
    assert caught(members, nonmembers).tolist() == [True, False, True, True]
    # Fewer than 100 non-members: strictly above every one of them.
    assert caught(np.array([9.0, 9.5]), np.arange(10, dtype=float)).tolist() == [False, True]


def _features(n: int, seed: int, ids: str) -> object:
    from codeaudit.membership.features import FeatureSet

    rng = np.random.default_rng(seed)
    return FeatureSet(
        ids=tuple(f"{ids}{i}" for i in range(n)),
        labels=rng.integers(0, 2, n),
        logits=rng.normal(size=(n, 2)).astype(np.float32),
        embeddings=rng.normal(size=(n, 4)).astype(np.float32),
        unk_rate=np.zeros(n),
        n_ids=np.full(n, 10),
        truncated=np.zeros(n, dtype=bool),
    )


def test_missing_scores_are_stated_not_invented() -> None:
    """A best attack that scored only a sample (the boundary attack), no reference models and
    a model that hides its embedding: every score null, the header says why."""
    import json
    from types import SimpleNamespace

    from codeaudit.config import MembershipConfig
    from codeaudit.membership.evaluate import Evaluated

    f_m, f_n = _features(12, 0, "m"), _features(15, 1, "n")
    sample = Evaluated("label-only-boundary", "label-only", ("label",), None, np.zeros(8), 0.0)  # type: ignore[arg-type]
    best = SimpleNamespace(attack="label-only-boundary", features="label")
    config = MembershipConfig(model="m.pt", members="m", nonmembers="n", risk_scores="r.jsonl")
    summary, data = risk.member_risk([sample], best, f_m, f_n, frozenset({"label"}), config)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert len(lines) == 13 and [line["id"] for line in lines[1:]] == list(f_m.ids)
    methods = lines[0]["methods"]
    assert "only a sample" in methods["attack"]["detail"]
    assert "no reference models" in methods["lira"]["detail"]
    assert "no embedding" in methods["shapr"]["detail"]
    assert all(line[m] is None for line in lines[1:] for m in ("attack", "lira", "shapr"))
    assert summary.correlations == () and summary.caught_top_shapr is None
    assert [m.available for m in summary.methods] == [False, False, False]


def test_scores_ranks_and_high_flags_follow_the_method() -> None:
    import json
    from types import SimpleNamespace

    from codeaudit.config import MembershipConfig
    from codeaudit.membership.evaluate import Evaluated

    f_m, f_n = _features(20, 2, "m"), _features(150, 3, "n")
    scores = np.r_[np.linspace(0, 2, 20), np.linspace(-1, 1, 150)]  # members 1.0-2.0 caught
    ev = Evaluated("threshold-loss", "threshold", ("loss",), None, scores, 0.0)  # type: ignore[arg-type]
    best = SimpleNamespace(attack="threshold-loss", features="loss")
    config = MembershipConfig(
        model="m.pt", members="m", nonmembers="n", risk_scores="r.jsonl", shapr_k=2
    )
    usable = frozenset({"embedding", "loss", "confidence", "logits", "label"})
    summary, data = risk.member_risk([ev], best, f_m, f_n, usable, config)
    rows = [json.loads(line) for line in data.decode().splitlines()][1:]
    assert [r["attack"]["rank"] for r in rows] == list(range(20, 0, -1))
    assert [r["attack"]["high"] for r in rows] == list(caught(scores[:20], scores[20:]))
    assert summary.methods[0].high_risk == sum(r["attack"]["high"] for r in rows) > 0
    header = json.loads(data.decode().splitlines()[0])
    assert header["methods"]["attack"]["cut"] == pytest.approx(scores[20:][::-1][1])  # 2nd top
    assert header["methods"]["lira"]["cut"] is None
    values = knn_shapley(f_m.embeddings, f_m.labels, f_n.embeddings, f_n.labels, 2)
    np.testing.assert_allclose([r["shapr"]["score"] for r in rows], values, rtol=1e-5)
    fair = values.sum() / 20
    assert [r["shapr"]["high"] for r in rows] == [bool(v >= 3 * fair and v > 0) for v in values]
    assert summary.shapr_utility == pytest.approx(values.sum(), abs=1e-6)
