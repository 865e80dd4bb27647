"""ROC curves of membership attacks on log-log axes (Carlini et al. 2022): what matters is the
true-positive rate at low false-positive rates, which a linear plot hides.

The curves are sampled into the result (:class:`RocCurve`, by :mod:`codeaudit.membership.curves`),
so the PNG can be drawn from a result alone: by ``--plot`` and by the Markdown and HTML reports."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from codeaudit.io import atomic_write

if TYPE_CHECKING:
    from codeaudit.membership.result import RocCurve


def roc_png(curves: Sequence[RocCurve], n_nonmembers: int) -> bytes:
    # A Figure of its own with the Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    floor = 1.0 / max(1, n_nonmembers)
    for curve in curves:
        fpr = np.maximum(np.asarray(curve.fpr), floor)
        tpr = np.maximum(np.asarray(curve.tpr), floor)
        label = f"{curve.attack} ({curve.features}) AUC {curve.auc:.3f}"
        if curve.joined:  # few score values: points joined, ties broken at random
            ax.plot(fpr, tpr, linestyle="-.", label=f"{label}, ties at random")
        else:
            ax.step(fpr, tpr, where="post", label=label)
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
    return buffer.getvalue()


def write_roc_plot(
    path: str, curves: Sequence[RocCurve], n_nonmembers: int, *, force: bool
) -> None:
    data = roc_png(curves, n_nonmembers)
    atomic_write(path, lambda handle: handle.write(data), force=force)
