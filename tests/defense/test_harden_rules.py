"""Every CA-H rule fires on a crafted result and stays quiet on a clean one."""

from __future__ import annotations

import pytest

from codeaudit.rules import evaluate, load_rules
from tests.defense.rule_cases import clean_harden_result, harden_cases


def test_every_harden_rule_has_a_case() -> None:
    ids = {r.id for r in load_rules() if r.id.startswith("CA-H")}
    assert ids == set(harden_cases())
    for rule in load_rules():
        if rule.id.startswith("CA-H"):
            assert rule.commands == ("harden",) and rule.help_uri and rule.tags


@pytest.mark.parametrize("rule_id", sorted(harden_cases()))
def test_harden_rule_fires_on_crafted_and_not_on_clean(rule_id: str) -> None:
    rule = next(r for r in load_rules() if r.id == rule_id)
    command, firing, clean = harden_cases()[rule_id]()
    fired = evaluate([rule], firing, command=command, target="models/h.pt")
    assert [f.rule_id for f in fired] == [rule_id]
    assert "models/h.pt" in fired[0].message and "{" not in fired[0].message
    assert evaluate([rule], clean, command=command, target="models/h.pt") == ()
    assert evaluate(load_rules(), clean_harden_result(), command="harden", target="m") == ()
