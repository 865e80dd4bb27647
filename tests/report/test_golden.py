"""Golden files: the JSON and SARIF reports of a crafted membership result, byte for byte after
normalising what changes between runs (timestamps, the codeaudit version, the working directory).

Regenerate after an intended format change with ``UPDATE_GOLDEN=1 pytest tests/report`` and review
the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from codeaudit.gate import GateSettings, apply_gate
from codeaudit.report import render
from tests.report.crafted import membership_result

GOLDEN = Path(__file__).parent / "golden"
TIME = "2025-01-01T00:00:00Z"


def _normalise(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if key in ("created", "started", "finished", "startTimeUtc", "endTimeUtc"):
        return TIME if value else value
    if key in ("version", "semanticVersion") and value != "2.1.0":
        return "VERSION"
    if key == "uri" and isinstance(value, str) and value.startswith("file://"):
        return "file:///CWD/"
    return value


def _result() -> Any:
    return apply_gate(membership_result(), GateSettings(fail_on="high", started=TIME))


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_golden(fmt: str) -> None:
    text = render(_result(), fmt)
    normalised = json.dumps(_normalise(json.loads(text)), indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"membership.{fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(normalised, encoding="utf-8")
    assert normalised == path.read_text(encoding="utf-8"), (
        f"{fmt} report changed; if intended, regenerate with UPDATE_GOLDEN=1 and review the diff"
    )


def test_json_report_is_stable_key_order_and_plain_json() -> None:
    text = render(_result(), "json")
    document = json.loads(text)
    assert list(document)[:4] == ["tool", "version", "command", "created"]
    assert document["model"] == {"path": "models/model.pt", "sha256": "ab" * 32}
    assert document["gate"]["fail_on"] == "high" and document["gate"]["exit_code"] == 1
    assert "NaN" not in text and "Infinity" not in text
