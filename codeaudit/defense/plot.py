"""The privacy-utility curve of NMID: strongest score-attack AUC and the vulnerability score's
ROC AUC against sigma, with the label-only floor, the target and the chosen sigma."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codeaudit.defense.result import Calibration, CurvePoint, DefenseInfo, Verification


def privacy_utility_png(
    curve: Sequence[CurvePoint],
    calibration: Calibration | None,
    verification: Verification | None,
    defense: DefenseInfo,
) -> bytes:
    # A Figure of its own with the Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    positive = [p.sigma for p in curve if p.sigma > 0] or [0.25]
    linthresh = min(positive)

    def xs(points: Sequence[CurvePoint]) -> list[float]:
        return [p.sigma for p in points]

    shown = [p for p in curve if p.best_auc is not None]
    if shown:
        ax.plot(
            xs(shown),
            [p.best_auc for p in shown],
            "o-",
            color="tab:red",
            label="strongest score attack AUC (verification)",
        )
    rewrites = [p for p in curve if p.rewrite_auc is not None]
    if rewrites:
        ax.plot(
            xs(rewrites),
            [p.rewrite_auc for p in rewrites],
            "^-",
            color="tab:purple",
            label="averaged over rewrites (verification)",
        )
    if calibration is not None:
        cal = [p for p in calibration.points if p.best_auc is not None]
        ax.plot(
            xs(cal),
            [p.best_auc for p in cal],
            "x",
            color="tab:orange",
            label="same, calibration split",
        )
    utility = [p for p in curve if p.roc_auc_nonmembers is not None]
    if utility:
        ax.plot(
            xs(utility),
            [p.roc_auc_nonmembers for p in utility],
            "s--",
            color="tab:blue",
            label="vulnerability ROC AUC, non-members (utility)",
        )
    if verification is not None:
        ax.axhline(
            verification.labels_only_auc,
            color="k",
            linestyle=":",
            linewidth=1,
            label=f"labels alone {verification.labels_only_auc:.3f}",
        )
        if verification.rewrite_labels_only_auc is not None:
            ax.axhline(
                verification.rewrite_labels_only_auc,
                color="tab:purple",
                linestyle=":",
                linewidth=1,
                label=f"rewrites' labels alone {verification.rewrite_labels_only_auc:.3f}",
            )
        ax.axhline(
            verification.target,
            color="tab:green",
            linestyle="--",
            linewidth=1,
            label=f"target {verification.target:.3f}",
        )
    ax.axvline(
        defense.sigma,
        color="tab:gray",
        linewidth=1,
        label=f"sigma {defense.sigma:.3g} ({defense.sigma_source})",
    )
    ax.axhline(0.5, color="lightgray", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=linthresh)
    largest = max([p.sigma for p in curve] + [defense.sigma, linthresh])
    ax.set_xlim(0, largest * 1.5)
    ax.set_xlabel("sigma (noise std per logit; linear below the first grid step)")
    ax.set_ylabel("AUC")
    values = (
        [p.best_auc for p in shown]
        + [p.rewrite_auc for p in rewrites]
        + [p.roc_auc_nonmembers for p in utility]
    )
    ax.set_ylim(min([0.45, *(v - 0.03 for v in values if v is not None)]), 1.02)
    ax.set_title(f"NMID privacy-utility curve (expose {defense.expose})")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
