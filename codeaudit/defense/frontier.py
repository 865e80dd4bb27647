"""The privacy-utility frontier: every way the model's answers were released, as (strongest
attack AUC, ROC AUC of the released score on non-members), with the label-only release and the
undefended model on the same data, and the operating point chosen on it.

A noised release is only worth shipping when it *beats the label*: it keeps every attack that
sees its scores within the target (what the same attacks reach from labels alone + the margin,
or ``--target-auc`` when higher) **and** ranks unseen functions better than the label alone
does. The label-only release meets the target by definition (its attacks are the labels-alone
attacks), so among the points that meet it the most useful one is chosen, and when that is the
label, the frontier says so in one line and recommends ``--expose label``. Pure arithmetic on
measured points: no torch, no data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from codeaudit.defense.result import CurvePoint, Frontier, FrontierPoint

_EPS = 1e-12


def _meets(
    attack: float | None, rewrite: float | None, target: float, rewrite_target: float | None
) -> bool:
    if attack is not None and attack > target + _EPS:
        return False
    if rewrite is None or rewrite_target is None:
        return True
    return rewrite <= rewrite_target + _EPS


def _pareto(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """Mark the points no other point dominates (lower or equal attack AUC and higher or equal
    ranking utility, one strictly)."""

    def key(p: FrontierPoint) -> tuple[float, float] | None:
        if p.attack_auc is None or p.roc_auc_nonmembers is None:
            return None
        return p.attack_auc, p.roc_auc_nonmembers

    out = []
    for p in points:
        mine = key(p)
        dominated = mine is not None and any(
            (other := key(q)) is not None
            and other[0] <= mine[0]
            and other[1] >= mine[1]
            and (other[0] < mine[0] or other[1] > mine[1])
            for q in points
            if q is not p
        )
        out.append(FrontierPoint(**{**p.__dict__, "pareto": mine is not None and not dominated}))
    return out


def _name(point: CurvePoint) -> str:
    return f"{point.bands} bands" if point.bands is not None else f"sigma {point.sigma:g}"


def build_frontier(
    curve: Sequence[CurvePoint],
    *,
    undefended: CurvePoint | None,
    labels_only_auc: float,
    rewrite_labels_only_auc: float | None,
    label_roc_auc_nonmembers: float | None,
    target: float,
    rewrite_target: float | None,
    data: str,
    noise: str,
    shipped: str,
    slack: float = 0.0,
    min_gain: float = 0.0,
) -> Frontier:
    """The frontier of ``curve`` (the settings tried, measured on ``data``) against the
    label-only release and the undefended model (``undefended``: the sigma-0 point; taken
    from ``curve`` when it holds one), and the operating point chosen on it. ``slack``: points
    measured on the data that chose them (the calibration split) must meet each target by this
    much, as calibration asks. ``min_gain``: the ROC AUC a noised release must gain over the
    label alone to beat it (a smaller gain is within the estimate's noise). One band releases
    the label and pure noise: never a candidate."""
    asked, asked_rewrite = target, rewrite_target
    target -= slack
    if rewrite_target is not None:
        rewrite_target -= slack
    if undefended is None:
        undefended = next((p for p in curve if p.bands is None and p.sigma == 0), None)
    points: list[FrontierPoint] = []
    if undefended is not None:
        points.append(
            FrontierPoint(
                "undefended",
                "undefended",
                0.0,
                None,
                undefended.best_auc,
                undefended.rewrite_auc,
                undefended.roc_auc_nonmembers,
                _meets(undefended.best_auc, undefended.rewrite_auc, target, rewrite_target),
                False,
            )
        )
    for p in curve:
        if p.bands is None and p.sigma == 0:
            continue  # the undefended point
        points.append(
            FrontierPoint(
                _name(p),
                "banded" if p.bands is not None else "gaussian",
                None if p.bands is not None else p.sigma,
                p.bands,
                p.best_auc,
                p.rewrite_auc,
                p.roc_auc_nonmembers,
                _meets(p.best_auc, p.rewrite_auc, target, rewrite_target),
                False,
            )
        )
    label = FrontierPoint(
        "label only",
        "label",
        None,
        None,
        labels_only_auc,
        rewrite_labels_only_auc,
        label_roc_auc_nonmembers,
        True,
        False,
    )
    points.append(label)
    points = _pareto(points)
    label = points[-1]
    candidates = [
        p
        for p in points
        if p.kind in ("gaussian", "banded")
        and p.bands != 1
        and p.meets
        and p.roc_auc_nonmembers is not None
    ]
    label_roc = label.roc_auc_nonmembers
    undefended_roc = None if undefended is None else undefended.roc_auc_nonmembers
    better = [
        p
        for p in candidates
        if label_roc is None or p.roc_auc_nonmembers > label_roc + min_gain + _EPS  # type: ignore[operator]
    ]
    setting = "sigma" if noise == "gaussian" else "number of bands"
    shared: dict[str, Any] = {
        "data": data,
        "noise": noise,
        "target": asked,
        "rewrite_target": asked_rewrite,
        "labels_only_auc": labels_only_auc,
        "label_roc_auc_nonmembers": label_roc,
        "undefended_roc_auc_nonmembers": undefended_roc,
        "points": tuple(points),
        "slack": slack,
    }
    if better:
        best = max(
            better,
            key=lambda p: (p.roc_auc_nonmembers, -(p.attack_auc or 0.0), p.bands or 0),
        )
        reason = (
            f"{best.name} beats the label: its strongest score attack reaches "
            f"{best.attack_auc:.3f} (at most {target:.3f} allowed) and its score ranks unseen "
            f"functions with ROC AUC {best.roc_auc_nonmembers:.3f}, against {_fmt(label_roc)} "
            f"for the label alone and {_fmt(undefended_roc)} undefended."
        )
        return Frontier(
            **shared, chosen=best.name, recommend_label=False, reason=reason, shipped=shipped
        )
    if candidates:
        top = max(candidates, key=lambda p: p.roc_auc_nonmembers or 0.0)
        why = (
            f"the most useful {setting} within the target ({top.name}) ranks unseen functions "
            f"with ROC AUC {top.roc_auc_nonmembers:.3f}, not more than {min_gain:g} better than "
            f"the label alone ({_fmt(label_roc)})"
        )
    else:
        why = f"no {setting} tried keeps every score attack within the target {target:.3f}"
    reason = (
        f"No noised release beats the label-only release on this frontier: {why}; release "
        "labels only (--expose label)."
    )
    return Frontier(
        **shared, chosen=label.name, recommend_label=True, reason=reason, shipped=shipped
    )


def verify_frontier(
    frontier: Frontier,
    *,
    target_met: bool,
    attack_auc: float | None,
    target: float,
    roc_auc_nonmembers: float | None,
    label_roc_auc_nonmembers: float | None,
    min_gain: float = 0.0,
) -> Frontier:
    """The frontier with what ships checked on the verification split (data that chose
    nothing): the shipped setting beats the label only if it meets every target there and its
    score ranks unseen functions better than the label alone does on the same functions.
    When it does not, the label-only release is recommended, in one line."""
    beats = bool(
        frontier.shipped != "1 bands"
        and target_met
        and roc_auc_nonmembers is not None
        and (
            label_roc_auc_nonmembers is None
            or roc_auc_nonmembers > label_roc_auc_nonmembers + min_gain + _EPS
        )
    )
    verified = replace(
        frontier,
        verified_beats_label=beats,
        verified_roc_auc_nonmembers=roc_auc_nonmembers,
        verified_label_roc_auc_nonmembers=label_roc_auc_nonmembers,
    )
    if beats or frontier.recommend_label:
        return verified
    privacy = (
        f"its strongest score attack reaches {_fmt(attack_auc)} (target {target:.3f}, "
        f"{'met' if target_met else 'NOT met'})"
    )
    reason = (
        f"On the verification split the shipped {frontier.shipped} does not beat the label-only "
        f"release: {privacy} and its score ranks unseen functions with ROC AUC "
        f"{_fmt(roc_auc_nonmembers)} against {_fmt(label_roc_auc_nonmembers)} for the label "
        "alone; release labels only (--expose label)."
    )
    return replace(verified, chosen="label only", recommend_label=True, reason=reason)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
