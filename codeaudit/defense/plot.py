"""The privacy-utility curve of NMID: strongest score-attack AUC and the vulnerability score's
ROC AUC against sigma, with the label-only floor, the target and the chosen sigma."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    values = _curves(ax, curve, calibration)
    _levels(ax, verification, defense)
    positive = [p.sigma for p in curve if p.sigma > 0] or [0.25]
    linthresh = min(positive)
    ax.set_xscale("symlog", linthresh=linthresh)
    largest = max([p.sigma for p in curve] + [defense.sigma, linthresh])
    ax.set_xlim(0, largest * 1.5)
    ax.set_xlabel("sigma (noise std per logit; linear below the first grid step)")
    ax.set_ylabel("AUC")
    ax.set_ylim(min([0.45, *(v - 0.03 for v in values)]), 1.02)
    ax.set_title(f"NMID privacy-utility curve (expose {defense.expose})")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _series(
    ax: Any,
    points: Sequence[CurvePoint],
    field: str,
    style: str,
    color: str,
    label: str,
    *,
    always: bool = False,
) -> list[float]:
    """One measured series against sigma (points without the value left out; an empty series
    drawn, with its legend entry, only when ``always``); its values."""
    shown = [p for p in points if getattr(p, field) is not None]
    if shown or always:
        values = [getattr(p, field) for p in shown]
        ax.plot([p.sigma for p in shown], values, style, color=color, label=label)
    return [getattr(p, field) for p in shown]


def _curves(ax: Any, curve: Sequence[CurvePoint], calibration: Calibration | None) -> list[float]:
    """The measured curves; the values that set the y range (calibration's excluded)."""
    values = _series(
        ax, curve, "best_auc", "o-", "tab:red", "strongest score attack AUC (verification)"
    )
    values += _series(
        ax, curve, "rewrite_auc", "^-", "tab:purple", "averaged over rewrites (verification)"
    )
    if calibration is not None:
        label = "same, calibration split"
        _series(ax, calibration.points, "best_auc", "x", "tab:orange", label, always=True)
    values += _series(
        ax,
        curve,
        "roc_auc_nonmembers",
        "s--",
        "tab:blue",
        "vulnerability ROC AUC, non-members (utility)",
    )
    return values


def _levels(ax: Any, verification: Verification | None, defense: DefenseInfo) -> None:
    """The horizontal references (label-only floors, the target, chance) and the chosen sigma."""
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
        two = (
            verification.rewrite_target is not None
            and abs(verification.rewrite_target - verification.target) >= 5e-4
        )
        ax.axhline(
            verification.target,
            color="tab:green",
            linestyle="--",
            linewidth=1,
            label=f"target {verification.target:.3f}" + (" (score attacks)" if two else ""),
        )
        if two:
            assert verification.rewrite_target is not None
            ax.axhline(
                verification.rewrite_target,
                color="tab:purple",
                linestyle="--",
                linewidth=1,
                label=f"target {verification.rewrite_target:.3f} (averaging over rewrites)",
            )
    ax.axvline(
        defense.sigma,
        color="tab:gray",
        linewidth=1,
        label=f"sigma {defense.sigma:.3g} ({defense.sigma_source})",
    )
    ax.axhline(0.5, color="lightgray", linewidth=0.8)
