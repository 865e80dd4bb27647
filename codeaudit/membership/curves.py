"""ROC curves of the strongest attack of each family, sampled into the result
(:class:`~codeaudit.membership.result.RocCurve`) so that reports can draw them from the result
alone (:mod:`codeaudit.membership.plot`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codeaudit.membership.evaluate import Evaluated
from codeaudit.membership.metrics import roc_points
from codeaudit.membership.result import RocCurve

GRID_POINTS = 60
#: Scores with at most this many distinct values are drawn with joined operating points.
FEW_VALUES = 20


def _strongest_per_family(evaluated: Sequence[Evaluated]) -> list[Evaluated]:
    best: dict[str, Evaluated] = {}
    for ev in evaluated:
        if ev.family not in best or ev.score.auc > best[ev.family].score.auc:
            best[ev.family] = ev
    return sorted(best.values(), key=lambda ev: -ev.score.auc)


def sample_curve(fpr: np.ndarray, tpr: np.ndarray, floor: float, points: int = GRID_POINTS):
    """(fpr grid, tpr) with tpr the highest TPR at an FPR no larger than each grid value: the
    empirical step curve without interpolation, on a log grid from ``floor`` to 1."""
    grid = np.unique(np.r_[0.0, np.logspace(np.log10(floor), 0, points)])
    order = np.argsort(fpr, kind="stable")
    fpr, tpr = fpr[order], np.maximum.accumulate(tpr[order])
    idx = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    values = np.where(idx >= 0, tpr[np.clip(idx, 0, None)], 0.0)
    return grid, values


def joined_curve(fpr: np.ndarray, tpr: np.ndarray, floor: float, points: int = GRID_POINTS):
    """(fpr grid, tpr) with the ROC's operating points joined by straight lines: for scores with
    few values (a label-only attack has two), where tied samples are separated by chance."""
    grid = np.unique(np.r_[0.0, np.logspace(np.log10(floor), 0, points)])
    order = np.lexsort((tpr, fpr))
    return grid, np.interp(grid, fpr[order], tpr[order])


def roc_curves(evaluated: Sequence[Evaluated], membership: np.ndarray) -> tuple[RocCurve, ...]:
    """The strongest attack of each family, as sampled ROC curves (strongest first)."""
    floor = 1.0 / max(1, int((membership == 0).sum()))
    curves = []
    for ev in _strongest_per_family(evaluated):
        if len(ev.scores) != len(membership):
            continue  # scored on a subset (the boundary attack): no curve on the full set
        fpr, tpr, _ = roc_points(membership, ev.scores)
        joined = len(np.unique(ev.scores)) <= FEW_VALUES
        sample = joined_curve if joined else sample_curve
        grid, values = sample(np.asarray(fpr), np.asarray(tpr), floor)
        curves.append(
            RocCurve(
                attack=ev.attack,
                features="+".join(ev.features),
                auc=float(ev.score.auc),
                fpr=tuple(round(float(x), 6) for x in grid),
                tpr=tuple(round(float(y), 6) for y in values),
                joined=joined,
            )
        )
    return tuple(curves)
