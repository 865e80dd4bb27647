"""The privacy-utility frontier: the operating point chosen on it, label-only when no noised
release beats the label, a sigma (or a number of bands) when one does; and the banded
mechanism's calibration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from codeaudit.defense.calibrate import BandCalibrator, CurveEvaluator, SigmaCalibrator, sweep
from codeaudit.defense.frontier import build_frontier, verify_frontier
from codeaudit.defense.result import CurvePoint
from tests.defense.test_calibrate import synthetic


def point(sigma: float, attack: float, roc: float, rewrite: float | None = None) -> CurvePoint:
    return CurvePoint(sigma, attack, "a", None, rewrite, None, 1.0, roc)


def frontier(curve: list[CurvePoint], label_roc: float = 0.7, **kw):  # type: ignore[no-untyped-def]
    settings = {
        "undefended": None,
        "labels_only_auc": 0.58,
        "rewrite_labels_only_auc": None,
        "label_roc_auc_nonmembers": label_roc,
        "target": 0.60,
        "rewrite_target": None,
        "data": "the calibration split",
        "noise": "gaussian",
        "shipped": "sigma 1",
    }
    return build_frontier(curve, **{**settings, **kw})


def test_label_only_is_chosen_when_no_noised_point_beats_it() -> None:
    # the points within the target rank no better than the label; the ones that do leak
    curve = [
        point(0, 0.80, 0.90),
        point(0.5, 0.70, 0.85),
        point(1, 0.59, 0.70),
        point(4, 0.58, 0.66),
    ]
    f = frontier(curve)
    assert f.recommend_label and f.chosen == "label only"
    assert "--expose label" in f.reason and "\n" not in f.reason
    assert "sigma 1" in f.reason  # the most useful point within the target, named
    names = [p.name for p in f.points]
    assert names == ["undefended", "sigma 0.5", "sigma 1", "sigma 4", "label only"]
    by = {p.name: p for p in f.points}
    assert by["undefended"].attack_auc == 0.80 and f.undefended_roc_auc_nonmembers == 0.90
    assert not by["sigma 0.5"].meets and by["sigma 1"].meets and by["label only"].meets
    # sigma 4 is dominated by the label (same privacy or better, more useful); sigma 1 ties
    # the label's utility at a higher attack AUC: dominated too
    assert not by["sigma 4"].pareto and not by["sigma 1"].pareto
    assert by["label only"].pareto and by["undefended"].pareto and by["sigma 0.5"].pareto


def test_nothing_within_the_target_recommends_the_label_too() -> None:
    f = frontier([point(0, 0.9, 0.9), point(1, 0.8, 0.85)])
    assert f.recommend_label and "keeps every score attack within the target" in f.reason


def test_the_most_useful_point_within_the_target_is_chosen() -> None:
    curve = [
        point(0, 0.80, 0.90),
        point(0.5, 0.61, 0.88),  # just over the target
        point(1, 0.60, 0.84),
        point(2, 0.59, 0.80),
    ]
    f = frontier(curve)
    assert not f.recommend_label and f.chosen == "sigma 1"
    assert "sigma 1 beats the label" in f.reason and "0.840" in f.reason
    # the rewrite-averaging attack counts: over its own target, sigma 1 is out
    curve[2] = point(1, 0.60, 0.84, rewrite=0.7)
    f = frontier(curve, rewrite_labels_only_auc=0.6, rewrite_target=0.62)
    assert f.chosen == "sigma 2"


def test_a_tie_with_the_label_is_not_a_win() -> None:
    f = frontier([point(0, 0.8, 0.9), point(1, 0.59, 0.70)], label_roc=0.70)
    assert f.recommend_label


def test_banded_points_are_named_by_their_bands() -> None:
    undefended = point(0, 0.8, 0.9)
    curve = [replace(point(0, 0.59, 0.8), bands=8), replace(point(0, 0.58, 0.7), bands=1)]
    f = frontier(curve, undefended=undefended, noise="banded", shipped="8 bands")
    assert [p.name for p in f.points] == ["undefended", "8 bands", "1 bands", "label only"]
    assert f.chosen == "8 bands" and f.points[1].kind == "banded"


def _evaluator(obs):  # type: ignore[no-untyped-def]
    return CurveEvaluator(obs, "top1", classifiers=(), folds=3, seed=0)


def _frontier_of(evaluator: CurveEvaluator, curve) -> object:  # type: ignore[no-untyped-def]
    return build_frontier(
        curve,
        undefended=None,
        labels_only_auc=evaluator.labels_only_auc,
        rewrite_labels_only_auc=None,
        label_roc_auc_nonmembers=evaluator.label_roc_auc_nonmembers,
        target=max(0.6, evaluator.labels_only_auc + 0.02),
        rewrite_target=None,
        data="all",
        noise="gaussian",
        shipped="-",
    )


def test_measured_frontier_chooses_the_label_when_noise_buys_no_ranking() -> None:
    """Every non-member is predicted right: the label alone ranks them perfectly, so no noised
    score (which keeps every label) can rank better, while members leak through confidence."""
    obs = synthetic(150, 4, leak=3.0)
    evaluator = _evaluator(obs)
    assert evaluator.label_roc_auc_nonmembers == 1.0
    curve = sweep(evaluator, (0.0, 0.5, 2, 8, 32))
    assert curve[0].best_auc > 0.9  # the scores leak
    f = _frontier_of(evaluator, curve)
    assert f.recommend_label and f.chosen == "label only"  # type: ignore[attr-defined]


def _informative(seed: int) -> object:
    """Non-members the model gets wrong have small margins (the score ranks beyond the
    label); members leak nothing beyond the label."""
    obs = synthetic(200, seed, leak=0.0, wrong_nonmembers=0.25)
    logits = obs.clean.logits.copy()
    wrong = obs.clean.predicted != obs.clean.labels
    logits[wrong, 1] = np.sign(logits[wrong, 1]) * 0.05
    return replace(obs, clean=replace(obs.clean, logits=logits))


def test_measured_frontier_chooses_a_sigma_that_beats_the_label() -> None:
    obs = _informative(5)
    evaluator = _evaluator(obs)
    curve = sweep(evaluator, (0.0, 0.25, 0.5, 1, 4, 16))
    f = _frontier_of(evaluator, curve)
    chosen = next(p for p in f.points if p.name == f.chosen)  # type: ignore[attr-defined]
    assert not f.recommend_label and chosen.kind == "gaussian"  # type: ignore[attr-defined]
    assert chosen.roc_auc_nonmembers > evaluator.label_roc_auc_nonmembers + 0.05
    assert chosen.meets


def _uniform(obs, seed: int):  # type: ignore[no-untyped-def]
    u = np.random.default_rng(seed).uniform(0.001, 0.999, len(obs))
    return replace(obs, normals=np.stack([u, u], 1))


def test_band_calibration_keeps_ranking_where_the_label_alone_does_not() -> None:
    obs = _uniform(_informative(6), 0)
    evaluator = _evaluator(obs)
    cal = BandCalibrator(0.6).fit(evaluator)
    assert cal.reached_ and cal.bands_ > 1
    assert len(cal.edges_) == cal.bands_ - 1
    chosen = next(p for p in cal.points_ if p.bands == cal.bands_)
    assert chosen.best_auc <= cal.effective_target_ - cal.slack
    assert chosen.roc_auc_nonmembers > evaluator.label_roc_auc_nonmembers + 0.05
    # one band releases nothing beyond the label: its ranking is the label's, up to noise
    one = evaluator.point(0.0, edges=(), bands=1)
    assert one.bands == 1
    assert one.roc_auc_nonmembers == pytest.approx(evaluator.label_roc_auc_nonmembers, abs=0.05)


def test_band_calibration_backs_off_to_few_bands_when_confidence_leaks() -> None:
    obs = _uniform(synthetic(150, 7, leak=3.0), 1)
    evaluator = _evaluator(obs)
    cal = BandCalibrator(0.6).fit(evaluator)
    fine = cal.points_[0]
    assert fine.bands is not None and fine.bands > 8 and fine.best_auc > 0.7  # fine bands leak
    assert cal.bands_ < fine.bands
    assert [p.bands for p in cal.points_] == sorted((p.bands for p in cal.points_), reverse=True)


def test_sigma_and_band_calibrators_agree_on_their_targets() -> None:
    obs = synthetic(150, 8, leak=1.0)
    evaluator = _evaluator(obs)
    sigma = SigmaCalibrator(0.6, grid=(0.0, 1, 4, 16)).fit(evaluator)
    bands = BandCalibrator(0.6).fit(_evaluator(_uniform(obs, 2)))
    assert sigma.effective_target_ == bands.effective_target_


def test_calibration_points_must_meet_the_target_with_the_slack() -> None:
    curve = [point(0, 0.8, 0.9), point(1, 0.595, 0.85), point(2, 0.585, 0.80)]
    assert frontier(curve, label_roc=0.75).chosen == "sigma 1"
    f = frontier(curve, label_roc=0.75, slack=0.01)  # 0.595 > 0.60 - 0.01
    assert f.chosen == "sigma 2" and f.target == 0.60 and f.slack == 0.01


def test_the_shipped_setting_is_checked_on_the_verification_split() -> None:
    chosen = frontier([point(0, 0.8, 0.9), point(1, 0.59, 0.85)])
    assert not chosen.recommend_label
    kept = verify_frontier(
        chosen,
        target_met=True,
        attack_auc=0.6,
        target=0.61,
        roc_auc_nonmembers=0.84,
        label_roc_auc_nonmembers=0.80,
    )
    assert kept.verified_beats_label and not kept.recommend_label and kept.chosen == "sigma 1"
    for met, roc in ((False, 0.84), (True, 0.79), (True, 0.80)):
        overturned = verify_frontier(
            chosen,
            target_met=met,
            attack_auc=0.62,
            target=0.61,
            roc_auc_nonmembers=roc,
            label_roc_auc_nonmembers=0.80,
        )
        assert overturned.verified_beats_label is False and overturned.recommend_label
        assert overturned.chosen == "label only" and "--expose label" in overturned.reason
        assert "verification split" in overturned.reason and "\n" not in overturned.reason


def test_a_gain_within_the_noise_and_one_band_do_not_beat_the_label() -> None:
    curve = [point(0, 0.8, 0.9), point(1, 0.59, 0.705)]
    assert not frontier(curve, label_roc=0.70).recommend_label
    assert frontier(curve, label_roc=0.70, min_gain=0.01).recommend_label
    one = [replace(point(0, 0.58, 0.75), bands=1)]  # the label plus pure noise
    f = frontier(one, undefended=point(0, 0.8, 0.9), noise="banded", label_roc=0.70)
    assert f.recommend_label and f.chosen == "label only"
    shipped_one = replace(frontier(curve, label_roc=0.7), shipped="1 bands")
    checked = verify_frontier(
        shipped_one,
        target_met=True,
        attack_auc=0.58,
        target=0.6,
        roc_auc_nonmembers=0.75,
        label_roc_auc_nonmembers=0.70,
    )
    assert checked.recommend_label and checked.verified_beats_label is False
