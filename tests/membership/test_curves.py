"""The ROC curves stored in a membership result and drawn in its plot."""

from __future__ import annotations

import numpy as np

from codeaudit.membership.curves import FEW_VALUES, roc_curves
from codeaudit.membership.evaluate import Evaluated
from codeaudit.membership.metrics import roc_points


def _evaluated(scores: np.ndarray, membership: np.ndarray, family: str) -> Evaluated:
    from codeaudit.membership.metrics import score_attack

    return Evaluated(
        attack=f"{family}-x", family=family, features=("loss",), scores=scores,
        score=score_attack(membership, scores, n_boot=5, seed=0), seconds=0.0,
    )  # fmt: skip


def test_a_two_valued_attack_is_drawn_as_joined_points_not_a_wall() -> None:
    rng = np.random.default_rng(0)
    membership = np.r_[np.ones(200), np.zeros(200)].astype(int)
    correct = np.r_[rng.random(200) < 0.9, rng.random(200) < 0.6].astype(float)  # label-only
    continuous = membership * 0.3 + rng.random(400)
    curves = {
        c.attack: c
        for c in roc_curves(
            [_evaluated(correct, membership, "label-only"),
             _evaluated(continuous, membership, "threshold")],
            membership,
        )
    }  # fmt: skip
    binary, smooth = curves["label-only-x"], curves["threshold-x"]
    assert binary.joined and not smooth.joined
    fpr_star = float((correct[membership == 0] == 1).mean())  # the one interior point
    tpr_star = float((correct[membership == 1] == 1).mean())
    fpr, tpr = np.asarray(binary.fpr), np.asarray(binary.tpr)
    half = np.argmin(np.abs(fpr - fpr_star / 2))
    # below the operating point the attacker guesses: TPR grows with FPR (a step curve stays 0)
    assert 0 < tpr[half] < tpr_star
    assert abs(tpr[half] - tpr_star * fpr[half] / fpr_star) < 0.02
    full_fpr, full_tpr, _ = roc_points(membership, correct)
    assert abs(np.trapezoid(full_tpr, full_fpr) - binary.auc) < 1e-9  # what the AUC integrates
    assert len(np.unique(continuous)) > FEW_VALUES


def test_roc_png_draws_a_joined_curve() -> None:
    from codeaudit.membership.plot import roc_png
    from codeaudit.membership.result import RocCurve

    grid = (0.0, 0.01, 0.1, 1.0)
    png = roc_png(
        [RocCurve("label-only-correctness", "labels", 0.65, grid, (0.0, 0.02, 0.2, 1.0), True)],
        100,
    )
    assert png.startswith(b"\x89PNG")
