"""Calibration: split hygiene (sigma depends on the calibration half only), the search, and
the target that no output defence can beat (the label-only floor)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.defense.calibrate import CurveEvaluator, SigmaCalibrator, calibration_split
from codeaudit.defense.evaluate import Observations
from codeaudit.membership.features import FeatureSet
from codeaudit.models.tokenizer import Encoding


def synthetic(
    n: int, seed: int, *, leak: float = 3.0, wrong_nonmembers: float = 0.0
) -> Observations:
    """Members have a larger correct-class margin; ``wrong_nonmembers`` of the non-members are
    misclassified (a generalisation gap, hence a label-only floor)."""
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(n), np.zeros(n)].astype(np.int64)
    labels = rng.integers(0, 2, 2 * n)
    margin = rng.normal(2.0, 1.0, 2 * n) + leak * member  # margin of the true class
    margin = np.abs(margin) + 0.05
    wrong = (member == 0) & (rng.random(2 * n) < wrong_nonmembers)
    margin[wrong] *= -1
    z1 = np.where(labels == 1, margin, -margin)
    logits = np.stack([np.zeros(2 * n), z1], 1).astype(np.float32)
    clean = FeatureSet(
        ids=tuple(f"s{i}" for i in range(2 * n)),
        labels=labels,
        logits=logits,
        embeddings=np.zeros((2 * n, 0), dtype=np.float32),
        unk_rate=np.zeros(2 * n),
        n_ids=np.full(2 * n, 10),
        truncated=np.zeros(2 * n, dtype=bool),
    )
    samples = tuple(
        Sample(id=f"s{i}", code=f"int f{i}();", label=int(labels[i]), pair=f"p{i // 2}")
        for i in range(2 * n)
    )
    return Observations(
        samples=samples,
        encodings=tuple(Encoding((i,), (0,), 1, False, 0) for i in range(2 * n)),
        membership=member,
        clean=clean,
        variant_owner=np.zeros(0, dtype=np.int64),
        variant_encodings=(),
        variant_logits=np.zeros((0, 2), dtype=np.float32),
        normals=rng.standard_normal((2 * n, 2)),
        variant_normals=np.zeros((0, 2)),
    )


def test_split_is_disjoint_complete_seeded_and_keeps_pairs() -> None:
    rng = np.random.default_rng(0)
    samples = [
        Sample(
            id=f"s{i}",
            code="x",
            label=int(rng.integers(0, 2)),
            pair=f"p{i // 2}" if i < 60 else None,
        )
        for i in range(200)
    ]
    membership = np.r_[np.ones(100), np.zeros(100)].astype(np.int64)
    cal, ver = calibration_split(samples, membership, 0.5, seed=3)
    assert len(set(cal) & set(ver)) == 0 and len(cal) + len(ver) == 200
    assert 80 <= len(cal) <= 120
    side = {i: "cal" for i in cal} | {i: "ver" for i in ver}
    for i in range(0, 60, 2):
        assert side[i] == side[i + 1]  # a pair never straddles the split
    for part in (cal, ver):
        assert 0 < membership[part].sum() < len(part)
    again = calibration_split(samples, membership, 0.5, seed=3)
    other = calibration_split(samples, membership, 0.5, seed=4)
    assert np.array_equal(again[0], cal) and not np.array_equal(other[0], cal)


def _calibrate(obs: Observations, **kw) -> SigmaCalibrator:  # type: ignore[no-untyped-def]
    # threshold attacks only (classifiers=()): the search logic is what is tested here; the
    # trained attacks run in the end-to-end test (tests/defense/test_harden.py)
    evaluator = CurveEvaluator(obs, "top1", classifiers=(), folds=3, seed=0)
    return SigmaCalibrator(0.6, grid=(0.0, 0.5, 1, 2, 4, 8, 16, 32, 64), **kw).fit(evaluator)


def test_calibration_finds_the_smallest_sufficient_sigma() -> None:
    obs = synthetic(150, 1)
    cal = _calibrate(obs)
    assert cal.reached_ and cal.floor_ == 0.5 and cal.effective_target_ == 0.6
    assert cal.rewrite_labels_only_auc_ is None  # no rewrites in these observations
    by_sigma = {p.sigma: p.best_auc for p in cal.points_}
    assert by_sigma[0.0] > 0.9  # the unprotected scores leak
    assert by_sigma[cal.sigma_] <= 0.6 - cal.slack
    failing = [s for s, auc in by_sigma.items() if auc > 0.6 - cal.slack]
    assert failing and max(failing) < cal.sigma_  # everything below the choice failed
    assert cal.sigma_ > 0


def test_target_below_the_label_only_floor_is_raised_to_it() -> None:
    obs = synthetic(150, 2, wrong_nonmembers=0.5)
    cal = _calibrate(obs)
    assert 0.7 < cal.floor_ < 0.8
    # labels alone give at least the correctness floor (here: the same, the error is class-blind)
    assert cal.floor_ <= cal.labels_only_auc_ < cal.floor_ + 0.01
    assert cal.effective_target_ == cal.labels_only_auc_ + 0.02
    assert all(p.best_auc >= cal.floor_ - 0.05 for p in cal.points_)  # never far below the floor


def test_sigma_depends_only_on_the_calibration_half() -> None:
    """Verification samples made far leakier must not move sigma; a calibrator that (wrongly)
    saw them would choose another one, so this test can fail."""
    obs = synthetic(200, 3, leak=2.0)
    cal_index, ver_index = calibration_split(obs.samples, obs.membership, 0.5, seed=0)
    chosen = _calibrate(obs.subset(cal_index)).sigma_

    leakier = obs.clean.logits.copy()
    member_ver = ver_index[obs.membership[ver_index] == 1]
    leakier[member_ver, 1] *= 20.0  # members of the verification half: huge margins
    tampered = replace(obs, clean=replace(obs.clean, logits=leakier))
    assert _calibrate(tampered.subset(cal_index)).sigma_ == chosen
    assert _calibrate(tampered).sigma_ != chosen
