"""ROC curves of membership attacks on log-log axes (Carlini et al. 2022): what matters is the
true-positive rate at low false-positive rates, which a linear plot hides."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from codeaudit.io import atomic_write
from codeaudit.membership.evaluate import Evaluated
from codeaudit.membership.metrics import roc_points


def _strongest_per_family(evaluated: Sequence[Evaluated]) -> list[Evaluated]:
    best: dict[str, Evaluated] = {}
    for ev in evaluated:
        if ev.family not in best or ev.score.auc > best[ev.family].score.auc:
            best[ev.family] = ev
    return sorted(best.values(), key=lambda ev: -ev.score.auc)


def roc_png(evaluated: Sequence[Evaluated], membership: np.ndarray) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    floor = 1.0 / max(1, int((membership == 0).sum()))
    for ev in _strongest_per_family(evaluated):
        labels = membership if len(ev.scores) == len(membership) else None
        if labels is None:
            continue
        fpr, tpr, _ = roc_points(labels, ev.scores)
        ax.plot(
            np.maximum(fpr, floor),
            np.maximum(tpr, floor),
            label=f"{ev.attack} ({'+'.join(ev.features)}) AUC {ev.score.auc:.3f}",
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
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_roc_plot(
    path: str, evaluated: Sequence[Evaluated], membership: np.ndarray, *, force: bool
) -> None:
    data = roc_png(evaluated, membership)
    atomic_write(path, lambda handle: handle.write(data), force=force)
