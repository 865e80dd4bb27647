"""Seeded train/validation splits that keep groups (before/after pairs) on one side."""

from __future__ import annotations

import numpy as np

from codeaudit.data.samples import Dataset


def group_split(dataset: Dataset, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held_out) with about ``fraction`` of the samples held out.

    Samples sharing a ``pair`` id stay together (splitting a before/after pair inflates test
    scores); a sample without one is its own group. Groups are assigned per label stratum of the
    group's first sample so that both sides keep both labels when the data allow it; each
    stratum keeps at least one group, so the kept side is never empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(dataset.samples):
        key = sample.pair if sample.pair is not None else f"\0{sample.id}"
        groups.setdefault(key, []).append(index)
    rng = np.random.default_rng(seed)
    strata: dict[object, list[str]] = {}
    for key, members in groups.items():
        strata.setdefault(dataset.samples[members[0]].label, []).append(key)
    held: list[int] = []
    for stratum in sorted(strata, key=lambda v: (v is None, v)):
        keys = sorted(strata[stratum])
        rng.shuffle(keys)
        size = sum(len(groups[k]) for k in keys)
        target = fraction * size
        taken = 0
        for key in keys[:-1]:  # the last group always stays, so no side is emptied
            step = len(groups[key])
            if abs(taken + step - target) > abs(taken - target):
                break  # taking this group moves further from the target
            held.extend(groups[key])
            taken += step
    held_set = set(held)
    kept = [i for i in range(len(dataset)) if i not in held_set]
    return kept, sorted(held_set)
