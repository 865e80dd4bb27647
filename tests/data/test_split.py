"""Tests for codeaudit.data.split.group_split: seeded splits that keep pairs together."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.data.samples import Dataset, Sample
from codeaudit.data.split import group_split


def make(specs: list[tuple[int | None, str | None]]) -> Dataset:
    """A data set from (label, pair) specs; ids s0, s1, ..."""
    return Dataset(
        samples=tuple(
            Sample(id=f"s{i}", code=f"int f{i};", label=label, pair=pair)
            for i, (label, pair) in enumerate(specs)
        )
    )


def paired(n_pairs: int) -> Dataset:
    """Before/after pairs: the vulnerable version (1) then its fix (0), sharing a pair id."""
    specs: list[tuple[int | None, str | None]] = []
    for p in range(n_pairs):
        specs += [(1, f"p{p}"), (0, f"p{p}")]
    return make(specs)


def balanced(n: int) -> Dataset:
    return make([(i % 2, None) for i in range(n)])


def mixed(n: int) -> Dataset:
    """Pairs, triples and singletons with both labels."""
    specs: list[tuple[int | None, str | None]] = []
    for g in range(n):
        size = g % 3 + 1
        if size == 1:
            specs.append((g % 2, None))
        else:
            specs += [((g + k) % 2, f"grp{g}") for k in range(size)]
    return make(specs)


def check_partition(ds: Dataset, kept: list[int], held: list[int]) -> None:
    assert kept == sorted(kept) and held == sorted(held)
    assert not set(kept) & set(held)
    assert sorted(kept + held) == list(range(len(ds)))


def sides_of_groups(ds: Dataset, held: list[int]) -> dict[str, set[bool]]:
    held_set = set(held)
    sides: dict[str, set[bool]] = defaultdict(set)
    for i, s in enumerate(ds):
        if s.pair is not None:
            sides[s.pair].add(i in held_set)
    return sides


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5, 0.8])
@pytest.mark.parametrize("seed", range(5))
def test_pairs_never_straddle(fraction: float, seed: int) -> None:
    for ds in (paired(60), mixed(90)):
        kept, held = group_split(ds, fraction, seed)
        check_partition(ds, kept, held)
        sides = sides_of_groups(ds, held)
        assert sides
        assert all(len(side) == 1 for side in sides.values()), sides
        assert kept and held


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.5, 0.9])
def test_roughly_the_fraction_is_held_out(fraction: float) -> None:
    # Singletons, per label stratum: at most one sample over the target, never under it.
    ds = balanced(400)
    for seed in range(3):
        kept, held = group_split(ds, fraction, seed)
        check_partition(ds, kept, held)
        assert fraction * len(ds) <= len(held) <= fraction * len(ds) + 2
    # Groups: off by at most one group (size <= 3) per stratum.
    ds = mixed(300)
    for seed in range(3):
        _, held = group_split(ds, fraction, seed)
        assert abs(len(held) - fraction * len(ds)) <= 2 * 3


@pytest.mark.parametrize("ds", [balanced(40), paired(20), mixed(30)], ids=["single", "pair", "mix"])
@pytest.mark.parametrize("seed", range(5))
def test_both_labels_on_both_sides(ds: Dataset, seed: int) -> None:
    kept, held = group_split(ds, 0.2, seed)
    assert {ds[i].label for i in kept} == {0, 1}
    assert {ds[i].label for i in held} == {0, 1}


def test_both_labels_held_even_when_rare() -> None:
    # 5 vulnerable out of 100: stratification still puts one in the held-out part.
    ds = make([(1 if i < 5 else 0, None) for i in range(100)])
    for seed in range(10):
        kept, held = group_split(ds, 0.2, seed)
        assert {ds[i].label for i in held} == {0, 1}
        assert {ds[i].label for i in kept} == {0, 1}
        assert sum(ds[i].label for i in held) == 1


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31])
def test_same_seed_same_split(seed: int) -> None:
    ds = mixed(60)
    first = group_split(ds, 0.3, seed)
    assert group_split(ds, 0.3, seed) == first
    # A copy of the data set (not the same object) splits the same way.
    assert group_split(make([(s.label, s.pair) for s in ds]), 0.3, seed) == first


def test_different_seed_different_split() -> None:
    ds = mixed(60)
    splits = {tuple(group_split(ds, 0.3, seed)[1]) for seed in range(10)}
    assert len(splits) >= 9
    assert group_split(ds, 0.3, 0) != group_split(ds, 0.3, 1)


def test_samples_without_pair_are_their_own_groups() -> None:
    ds = make([(0, None)] * 10)
    for seed in range(5):
        kept, held = group_split(ds, 0.5, seed)
        assert len(held) == 5 and len(kept) == 5  # not all on one side
    # Over seeds, every sample ends up held out at some point, and kept at some point.
    held_counts = [0] * len(ds)
    for seed in range(40):
        for i in group_split(ds, 0.5, seed)[1]:
            held_counts[i] += 1
    assert all(0 < c < 40 for c in held_counts)


def test_pairless_sample_is_not_grouped_with_a_pair_of_the_same_name() -> None:
    # Sample s0 has id "s0" and no pair; s1 and s2 are a pair named "s0".
    ds = make([(0, None), (0, "s0"), (0, "s0"), (0, None), (0, None), (0, None)])
    apart = 0
    for seed in range(40):
        _, held = group_split(ds, 0.5, seed)
        assert (1 in held) == (2 in held)
        apart += (0 in held) != (1 in held)
    assert apart > 0


def test_unlabelled_samples_are_split_too() -> None:
    ds = make([(None, f"p{i // 2}") for i in range(40)])
    kept, held = group_split(ds, 0.25, 3)
    check_partition(ds, kept, held)
    assert len(held) == 10
    assert all(len(side) == 1 for side in sides_of_groups(ds, held).values())


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, 100.0, math.nan, -math.inf, math.inf])
def test_fraction_outside_open_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        group_split(balanced(10), fraction, 0)


@settings(max_examples=50, deadline=None)
@given(
    specs=st.lists(
        st.tuples(st.sampled_from([0, 1, None]), st.one_of(st.none(), st.sampled_from("abcdef"))),
        min_size=1,
        max_size=40,
    ),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_properties(
    specs: list[tuple[int | None, str | None]], fraction: float, seed: int
) -> None:
    ds = make(specs)
    kept, held = group_split(ds, fraction, seed)
    check_partition(ds, kept, held)
    assert all(len(side) == 1 for side in sides_of_groups(ds, held).values())
    assert group_split(ds, fraction, seed) == (kept, held)
