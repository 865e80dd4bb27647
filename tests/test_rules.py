from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from codeaudit.report.model import Finding, Severity, exit_code
from codeaudit.rules import RuleError, evaluate, load_rule_file, load_rules, lookup


@dataclass(frozen=True)
class _Checkpoint:
    source: str
    trusted_pickle: bool


@dataclass(frozen=True)
class _Result:
    checkpoint: _Checkpoint


def test_default_rules_load_and_have_stable_ids() -> None:
    rules = {r.id: r for r in load_rules()}
    assert "CA-C001" in rules
    rule = rules["CA-C001"]
    assert rule.severity is Severity.HIGH and rule.help_uri and rule.tags


def test_checkpoint_rule_fires_only_on_unpickled_checkpoints() -> None:
    rules = load_rules()
    fired = evaluate(rules, _Result(_Checkpoint("codeaudit", True)), command="predict", target="m")
    assert [f.rule_id for f in fired] == ["CA-C001"]
    assert "m needs arbitrary pickled objects" in fired[0].message
    quiet = evaluate(rules, _Result(_Checkpoint("codeaudit", False)), command="predict", target="m")
    assert quiet == ()
    other = evaluate(rules, _Result(_Checkpoint("codeaudit", True)), command="train", target="m")
    assert other == ()


RULE = """
[[rule]]
id = "X-1"
title = "t"
severity = "medium"
commands = ["predict"]
metric = "metrics.accuracy"
op = "<"
threshold = 0.5
message = "accuracy {value} below {threshold} for {target}"
"""


def test_a_user_rule_file_adds_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(RULE)
    rules = load_rules([path])
    assert {"CA-C001", "X-1"} <= {r.id for r in rules}
    replaced = tmp_path / "override.toml"
    replaced.write_text(RULE.replace('id = "X-1"', 'id = "CA-C001"'))
    ids = [r for r in load_rules([replaced]) if r.id == "CA-C001"]
    assert len(ids) == 1 and ids[0].metric == "metrics.accuracy"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('severity = "medium"', 'severity = "urgent"'), "severity 'urgent'"),
        (('op = "<"', 'op = "=~"'), "op '=~'"),
        (('metric = "metrics.accuracy"\n', ""), "missing metric"),
        (('title = "t"', 'title = "t"\ncolour = "red"'), "unknown rule field"),
        (('commands = ["predict"]', "commands = []"), "commands must be"),
        (("threshold = 0.5", "threshold = [1]"), "threshold must be"),
        (("[[rule]]", "[[rule]\n"), "invalid TOML"),
    ],
)
def test_bad_rule_files_fail_with_one_line(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(RULE.replace(*edit))
    with pytest.raises(RuleError, match=message) as info:
        load_rule_file(path)
    assert "\n" not in str(info.value) and "bad.toml" in str(info.value)


def test_duplicate_ids_in_one_file_and_missing_paths(tmp_path: Path) -> None:
    path = tmp_path / "dup.toml"
    path.write_text(RULE + RULE)
    with pytest.raises(RuleError, match="duplicate rule id X-1"):
        load_rule_file(path)
    with pytest.raises(RuleError, match="not found"):
        load_rules([tmp_path / "nope.toml"])


def test_lookup_paths() -> None:
    doc = {"best": {"auc": 0.9}, "attacks": [{"auc": 0.7}]}
    assert lookup(doc, "best.auc") == 0.9
    assert lookup(doc, "attacks.0.auc") == 0.7
    assert lookup(doc, "attacks.3.auc") is None and lookup(doc, "nope") is None
    assert lookup({"t": {"0.01": 0.4, "0": {"01": 9}}}, "t.0.01") == 0.4


def test_exit_codes_follow_fail_on() -> None:
    findings = (Finding("A", "t", Severity.MEDIUM, "m", "x"),)
    assert exit_code(findings, "low") == 1
    assert exit_code(findings, "medium") == 1
    assert exit_code(findings, "high") == 0
    assert exit_code(findings, "never") == 0
    assert exit_code((), "low") == 0
