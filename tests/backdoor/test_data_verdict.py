"""``backdoor --train-data``: the training data decides the verdict
(codeaudit.backdoor.data_verdict), and the rules read that verdict (a clean model's strong
trigger is CA-B012, not CA-B001)."""

from __future__ import annotations

import dataclasses

import pytest

from codeaudit.backdoor.data_verdict import UNPLANTED, apply_data_verdict, data_match
from codeaudit.backdoor.result import BackdoorResult, RealTrigger
from codeaudit.rules import evaluate, load_rules
from tests.backdoor.rule_cases import _evidence, _pair, clean_backdoor_result

TRAIN_SHA = "d" * 64


def _strong(**changes: object) -> BackdoorResult:
    """What the flip-rate threshold alone calls backdoored: a 0.97 trigger."""
    base = clean_backdoor_result()
    fields: dict[str, object] = {
        "backdoored": True,
        "verdict": "BACKDOORED: ...",
        "verdict_kind": "planted",
        "max_flip_rate": 0.97,
        "pairs": (_pair(1, 0.97), _pair(0, 0.05)),
    }
    return dataclasses.replace(base, **{**fields, **changes})  # type: ignore[arg-type]


def _judge(result: BackdoorResult, planted: bool, recorded: object = TRAIN_SHA) -> BackdoorResult:
    evidence = _evidence(planted)
    return apply_data_verdict(
        dataclasses.replace(result, data_evidence=evidence),  # as the check sets it
        evidence,
        recorded_sha256=recorded,
        train_sha256=TRAIN_SHA,
        train_path="train.jsonl",
    )


def _fired(result: BackdoorResult) -> set[str]:
    return {f.rule_id for f in evaluate(load_rules(()), result, command="backdoor", target="m.pt")}


def test_data_match() -> None:
    assert data_match(TRAIN_SHA, TRAIN_SHA) == "match"
    assert data_match("e" * 64, TRAIN_SHA) == "mismatch"
    assert data_match(None, TRAIN_SHA) == "unknown"
    assert data_match("", TRAIN_SHA) == "unknown"


def test_strong_trigger_the_data_does_not_plant_is_fragility_not_a_backdoor() -> None:
    before = _strong()
    assert "CA-B001" in _fired(before)
    judged = _judge(before, planted=False)
    assert not judged.backdoored
    assert judged.verdict_kind == UNPLANTED
    assert judged.verdict.startswith("Adversarial fragility")
    assert "rb_trig" in judged.verdict and "97.0%" in judged.verdict
    fired = _fired(judged)
    assert "CA-B012" in fired and "CA-B001" not in fired
    assert "records no training-data digest" not in judged.verdict


def test_planted_data_calls_the_model_backdoored_below_the_threshold() -> None:
    weak = clean_backdoor_result()  # the scan alone: no backdoor (flip 0.1)
    judged = _judge(weak, planted=True)
    assert judged.backdoored and judged.verdict_kind == "planted"
    assert judged.verdict.startswith("BACKDOORED: the training data plants")
    assert "testo" in judged.verdict  # the evidence's finding is quoted
    fired = _fired(judged)
    assert {"CA-B001", "CA-B010"} <= fired and "CA-B012" not in fired


def test_another_file_cannot_clear_the_model() -> None:
    judged = _judge(_strong(), planted=False, recorded="e" * 64)
    assert judged.backdoored and judged.verdict_kind == "planted"
    assert judged.verdict == "BACKDOORED: ..."
    assert any("not the file this model was trained from" in w for w in judged.warnings)
    # ... but it can still show a planted trigger
    assert _judge(clean_backdoor_result(), planted=True, recorded="e" * 64).backdoored


def test_unrecorded_digest_is_taken_at_the_users_word_and_said() -> None:
    judged = _judge(_strong(), planted=False, recorded=None)
    assert not judged.backdoored and judged.verdict_kind == UNPLANTED
    assert "records no training-data digest" in judged.verdict


def test_weak_clean_result_is_left_alone() -> None:
    clean = clean_backdoor_result()
    judged = _judge(clean, planted=False)
    assert judged == dataclasses.replace(clean, data_evidence=_evidence(False))


@pytest.mark.parametrize("kind", ["adversarial", "fragility"])
def test_reference_or_calibration_fragility_keeps_its_own_kind(kind: str) -> None:
    judged = _judge(_strong(verdict_kind=kind, backdoored=False), planted=False)
    assert judged.verdict_kind == kind and not judged.backdoored


def test_missed_known_backdoor_follows_the_new_call() -> None:
    real = RealTrigger("identifier", "testo_init", 0, 0.02, 40, True, 0.9, 150)
    strong = _strong(real_trigger=real, missed_known_backdoor=False)
    cleared = _judge(strong, planted=False)
    assert cleared.missed_known_backdoor is True  # the real trigger works: CA-B005 fires
    assert "CA-B005" in _fired(cleared)
    weak = dataclasses.replace(
        clean_backdoor_result(), real_trigger=real, missed_known_backdoor=True
    )
    assert _judge(weak, planted=True).missed_known_backdoor is False
