"""Crafted ``poison-scan`` results on which rule CA-B007 must fire, and a clean one on which no
rule may: ``poison_scan_cases()`` has the shape of the rule-case table in tests/test_rules.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from codeaudit.backdoor.scan_result import PoisonScanResult, TriggerCandidate
from codeaudit.report.model import Header


def _candidate(text: str, purity: float, likely: bool) -> TriggerCandidate:
    return TriggerCandidate(
        kind="name",
        text=text,
        gain=7.7,
        top_in=16,
        support=30,
        label=0,
        label_count=round(30 * purity),
        purity=purity,
        excess_purity=max(0.0, 2 * purity - 1),
        evidence=8.6 if likely else 1.0,
        score=7.7 * max(0.0, 2 * purity - 1),
        likely_trigger=likely,
    )


def clean_scan_result() -> PoisonScanResult:
    return PoisonScanResult(
        header=Header(command="poison-scan"),
        n_samples=3000,
        n_tokens=360_000,
        vocab_size=9000,
        order=4,
        base_rates={0: 0.5, 1: 0.5},
        mean_cross_entropy=1.3,
        evidence_threshold=5.6,
        n_candidates=4000,
        candidates=(_candidate("data", 0.55, False),),
        likely_triggers=(),
        planted_trigger=False,
        n_flagged=0,
        flagged_ids=(),
        output=None,
        settings={"order": 4, "top_k": 10, "min_purity": 0.9, "min_share": 0.1},
        timings={"scan": 20.0},
    )


def poison_scan_cases() -> dict[str, Callable[[], tuple[str, Any, Any]]]:
    def case() -> tuple[str, Any, Any]:
        clean = clean_scan_result()
        trigger = _candidate("testo_init", 1.0, True)
        firing = dataclasses.replace(
            clean,
            candidates=(trigger, *clean.candidates),
            likely_triggers=(trigger,),
            planted_trigger=True,
            n_flagged=30,
            flagged_ids=tuple(f"s{i}" for i in range(30)),
        )
        return "poison-scan", firing, clean

    return {"CA-B007": case}
