"""Crafted ``harden`` results on which each CA-H rule must fire, and a clean one on which none
may: ``harden_cases()`` has the shape of the rule-case table in tests/test_rules.py
(rule id -> () -> (command, firing result, clean result))."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from codeaudit.defense.result import (
    Calibration,
    DefenseInfo,
    Frontier,
    HardenResult,
    UtilityRow,
    Verification,
)
from codeaudit.report.model import CheckpointInfo, Header


def clean_harden_result() -> HardenResult:
    """A hardened model that holds, verified, with nothing to report."""
    verification = Verification(
        data="the verification split",
        n_members=300,
        n_nonmembers=300,
        label_only_floor=0.53,
        labels_only_auc=0.54,
        rewrite_labels_only_auc=0.55,
        target=0.6,
        rewrite_target=0.6,
        best_auc_before=0.9,
        best_attack_before="threshold-loss on loss",
        best_score_auc_after=0.55,
        best_score_attack_after="threshold-loss on loss",
        excess_over_floor=0.01,
        rewrite_averaging_auc=0.56,
        rewrite_excess=0.01,
        target_met=True,
        label_only_auc=0.55,
        single_query_auc=0.55,
        repeat_averaging_auc=0.55,
        averaging_gain=0.0,
        rewrite_averaging_gain=0.01,
        labels_changed=0,
        roc_auc_drop=0.005,
        rows=(),
        utility=(UtilityRow("non-members", 300, 0.8, 0.8, 0.8, 0.8, 0.85, 0.845),),
        attacks_before=(),
        attacks_after=(),
    )
    calibration = Calibration(
        target_auc=0.6,
        floor_margin=0.02,
        slack=0.01,
        label_only_floor=0.53,
        labels_only_auc=0.54,
        rewrite_labels_only_auc=0.55,
        effective_target=0.6,
        rewrite_target=0.6,
        sigma=2.0,
        reached=True,
        auc_at_sigma=0.58,
        rewrite_auc_at_sigma=0.58,
        n_members=300,
        n_nonmembers=300,
        points=(),
    )
    return HardenResult(
        header=Header(command="harden", seed=0),
        checkpoint=CheckpointInfo("codeaudit", False),
        defense=DefenseInfo(
            kind="nmid",
            sigma=2.0,
            sigma_source="calibrated",
            expose="top1",
            keyed=True,
            key_fingerprint="0" * 16,
            parent_sha256="a" * 64,
            exposes=("label", "probs"),
        ),
        status="holds",
        verdict="holds",
        calibration=calibration,
        sweep=(),
        verification=verification,
        exports=(),
        settings={},
        timings={},
        frontier=_frontier(recommend_label=False),
    )


def _with(**changes: Any) -> Callable[[], tuple[str, Any, Any]]:
    """A case whose firing result changes verification/calibration fields (or the status)."""

    def case() -> tuple[str, Any, Any]:
        clean = clean_harden_result()
        assert clean.verification is not None and clean.calibration is not None
        verification = {k[2:]: v for k, v in changes.items() if k.startswith("v_")}
        calibration = {k[2:]: v for k, v in changes.items() if k.startswith("c_")}
        top = {k: v for k, v in changes.items() if k[:2] not in ("v_", "c_")}
        firing = dataclasses.replace(
            clean,
            verification=dataclasses.replace(clean.verification, **verification),
            calibration=dataclasses.replace(clean.calibration, **calibration),
            **top,
        )
        return "harden", firing, clean

    return case


def harden_cases() -> dict[str, Callable[[], tuple[str, Any, Any]]]:
    return {
        "CA-H001": _with(v_target_met=False, status="partial"),
        "CA-H002": _with(v_roc_auc_drop=0.06),
        "CA-H003": _with(v_label_only_auc=0.7),
        "CA-H004": _with(c_reached=False),
        "CA-H005": _with(v_averaging_gain=0.1),
        "CA-H006": _with(v_rewrite_averaging_gain=0.05),
        "CA-H007": _with(status="unverified"),
        "CA-H008": _with(frontier=_frontier(recommend_label=True)),
    }


def _frontier(*, recommend_label: bool) -> Frontier:
    return Frontier(
        data="the calibration split",
        noise="gaussian",
        target=0.6,
        rewrite_target=0.6,
        labels_only_auc=0.54,
        label_roc_auc_nonmembers=0.8,
        undefended_roc_auc_nonmembers=0.85,
        points=(),
        chosen="label only" if recommend_label else "sigma 2",
        recommend_label=recommend_label,
        reason="...",
        shipped="sigma 2",
    )
