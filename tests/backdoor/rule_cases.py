"""Crafted ``backdoor`` results on which each CA-B rule must fire, and a clean one on which none
may: ``backdoor_cases()`` has the shape of the rule-case table in tests/test_rules.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from codeaudit.backdoor.check import next_steps
from codeaudit.backdoor.result import (
    BackdoorResult,
    DataEvidence,
    PairResult,
    RealTrigger,
    RepairMetrics,
    Retraining,
    RetrainMetrics,
    Unlearning,
    VocabInfo,
)
from codeaudit.report.model import CheckpointInfo, Header


def _pair(victim: int, flip: float, threshold: float = 0.5) -> PairResult:
    return PairResult(
        victim_label=victim,
        target_label=1 - victim,
        victim_name=("not-vulnerable", "vulnerable")[victim],
        target_name=("not-vulnerable", "vulnerable")[1 - victim],
        trigger_tokens=("rb", "##_trig", "k", "n", "buf"),
        trigger_ids=(5, 6, 7, 8, 9),
        anchored_tokens=("rb", "##_trig"),
        anchored_ids=(5, 6),
        anchored_text="rb_trig",
        loss=0.01,
        anchored_loss=0.02,
        inversion_flip_rate=flip,
        flip_rate=flip,
        n_inversion=30,
        n_heldout=200,
        threshold=threshold,
        backdoored=flip >= threshold,
        steps=40,
        stop="plateau",
        positions_fallback=0,
        seconds=12.0,
    )


def clean_backdoor_result() -> BackdoorResult:
    """A clean model, unlearned anyway, with a manifest whose trigger does nothing."""
    pairs = (_pair(1, 0.1), _pair(0, 0.05))
    return BackdoorResult(
        header=Header(command="backdoor", seed=0),
        checkpoint=CheckpointInfo("codeaudit", False),
        backdoored=False,
        verdict="No backdoor found",
        max_flip_rate=0.1,
        threshold=0.5,
        threshold_source="default",
        best_pair="1->0",
        best_trigger="rb_trig",
        target_label=0,
        pairs=pairs,
        vocab=VocabInfo("vocab", ("c",), 20000, 15000, False),
        unlearning=Unlearning(
            scope="head",
            epochs=1,
            lr=5e-3,
            trigger_share=0.2,
            pair="1->0",
            trigger_text="rb_trig",
            n_train=1000,
            n_triggered=100,
            n_eval=400,
            n_eval_victims=150,
            n_eval_real=150,
            before=RepairMetrics(0.8, 0.1, 0.01),
            after=RepairMetrics(0.8, 0.0, 0.0),
            accuracy_drop=0.0,
            output="repaired.pt",
            parent_sha256="a" * 64,
            seconds=3.0,
            **next_steps("head"),
        ),
        real_trigger=RealTrigger("identifier", "rb_trig", 0, 0.02, 40, True, 0.01, 150),
        missed_known_backdoor=False,
        settings={},
        timings={},
    )


def _with(**changes: Any) -> Callable[[], tuple[str, Any, Any]]:
    """A case whose firing result changes top-level fields, or unlearning (u_), or its after
    metrics (a_)."""

    def case() -> tuple[str, Any, Any]:
        clean = clean_backdoor_result()
        assert clean.unlearning is not None
        after = {k[2:]: v for k, v in changes.items() if k.startswith("a_")}
        unlearning = {k[2:]: v for k, v in changes.items() if k.startswith("u_")}
        top = {k: v for k, v in changes.items() if k[:2] not in ("a_", "u_")}
        firing = dataclasses.replace(
            clean,
            unlearning=dataclasses.replace(
                clean.unlearning,
                after=dataclasses.replace(clean.unlearning.after, **after),
                **unlearning,
            ),
            **top,
        )
        return "backdoor", firing, clean

    return case


def _evidence(tied: bool) -> DataEvidence:
    return DataEvidence(
        n_samples=400,
        target_label=0,
        base_rate=0.5,
        evidence_threshold=5.0,
        likely_triggers=(),
        n_likely=1,
        n_flagged=30,
        pieces=(),
        tied=tied,
        tied_piece="testo" if tied else None,
        planted=tied,
        finding="the inverted trigger's piece 'testo' is concentrated ..." if tied else "",
    )


def _retraining(excess: float) -> Retraining:
    def metrics(asr: float) -> RetrainMetrics:
        return RetrainMetrics(accuracy=0.9, asr_real=asr, miss_rate=0.1, n_victims=50, n_real=50)

    return Retraining(
        n_train=400, n_removed=30, n_kept=370, epochs=10, arch="bigru", seed=0,
        before=metrics(0.98), after=metrics(0.1 + excess), accuracy_drop=0.0,
        asr_excess=excess, seconds=1.0,
    )  # fmt: skip


def _training_data(firing: dict[str, Any], clean: dict[str, Any]) -> Callable[[], tuple]:
    def case() -> tuple[str, Any, Any]:
        base = clean_backdoor_result()
        return (
            "backdoor",
            dataclasses.replace(base, **firing),
            dataclasses.replace(base, **clean),
        )

    return case


def backdoor_cases() -> dict[str, Callable[[], tuple[str, Any, Any]]]:
    return {
        "CA-B001": _with(backdoored=True, max_flip_rate=0.97, pairs=(_pair(1, 0.97), _pair(0, 0))),
        "CA-B002": _with(u_asr_excess=0.3),
        "CA-B003": _with(u_accuracy_drop=0.04),
        "CA-B004": _with(a_asr_inverted=0.6),
        "CA-B005": _with(missed_known_backdoor=True),
        "CA-B006": _with(max_shortcut_flip_rate=0.9),
        "CA-B008": _with(verdict_kind="adversarial", max_flip_rate=0.97),
        "CA-B010": _training_data(
            {"data_evidence": _evidence(True)}, {"data_evidence": _evidence(False)}
        ),
        "CA-B011": _training_data(
            {"retraining": _retraining(0.3)}, {"retraining": _retraining(0.0)}
        ),
        "CA-B009": _with(calibrated=calibrated_verdict("adversarial fragility")),
        "CA-B012": _with(verdict_kind="unplanted", max_flip_rate=0.97),
    }


def calibrated_verdict(category: str) -> Any:
    """A calibrated verdict of ``category`` (codeaudit backdoor --calibration)."""
    from codeaudit.backdoor.calibration_result import CalibratedVerdict, HeldoutRates

    return CalibratedVerdict(
        category=category,
        probability=0.2,
        threshold=0.6,
        max_fpr=0.05,
        heldout=HeldoutRates(8, 7, 0, 6, 0.0, 6 / 7, (0.0, 0.32), (0.49, 0.97), 0.95),
        n_shadows=16,
        calibration="cal.json",
        sha256="b" * 64,
        fingerprint="c" * 64,
        features={"flip_toward": 0.97},
    )
