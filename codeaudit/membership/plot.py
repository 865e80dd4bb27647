"""ROC curves of membership attacks on log-log axes (Carlini et al. 2022): what matters is the
true-positive rate at low false-positive rates, which a linear plot hides.

The curves are sampled into the result (:class:`RocCurve`), so the PNG can be drawn from a result
alone: by ``--plot`` and by the Markdown and HTML reports."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from codeaudit.io import atomic_write
from codeaudit.membership.evaluate import Evaluated
from codeaudit.membership.metrics import roc_points
from codeaudit.membership.result import RocCurve

GRID_POINTS = 60


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


def roc_curves(evaluated: Sequence[Evaluated], membership: np.ndarray) -> tuple[RocCurve, ...]:
    """The strongest attack of each family, as sampled ROC curves (strongest first)."""
    floor = 1.0 / max(1, int((membership == 0).sum()))
    curves = []
    for ev in _strongest_per_family(evaluated):
        if len(ev.scores) != len(membership):
            continue  # scored on a subset (the boundary attack): no curve on the full set
        fpr, tpr, _ = roc_points(membership, ev.scores)
        grid, values = sample_curve(np.asarray(fpr), np.asarray(tpr), floor)
        curves.append(
            RocCurve(
                attack=ev.attack,
                features="+".join(ev.features),
                auc=float(ev.score.auc),
                fpr=tuple(round(float(x), 6) for x in grid),
                tpr=tuple(round(float(y), 6) for y in values),
            )
        )
    return tuple(curves)


def roc_png(curves: Sequence[RocCurve], n_nonmembers: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    floor = 1.0 / max(1, n_nonmembers)
    for curve in curves:
        fpr = np.maximum(np.asarray(curve.fpr), floor)
        tpr = np.maximum(np.asarray(curve.tpr), floor)
        ax.step(
            fpr,
            tpr,
            where="post",
            label=f"{curve.attack} ({curve.features}) AUC {curve.auc:.3f}",
        )
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, "k--", linewidth=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Membership attacks (strongest per family)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_roc_plot(
    path: str, curves: Sequence[RocCurve], n_nonmembers: int, *, force: bool
) -> None:
    data = roc_png(curves, n_nonmembers)
    atomic_write(path, lambda handle: handle.write(data), force=force)
