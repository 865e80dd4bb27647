"""Rules: loading and validation, every default rule on crafted results, selection, lookup."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codeaudit.report.model import Finding, Severity, exit_code
from codeaudit.rules import (
    COMMANDS,
    RuleError,
    check_selectors,
    default_rules_dir,
    evaluate,
    is_selected,
    load_rule_file,
    load_rules,
    lookup,
    select_rules,
    unresolved_metrics,
)
from tests.backdoor.rule_cases import backdoor_cases
from tests.backdoor.scan_rule_cases import poison_scan_cases
from tests.defense.rule_cases import harden_cases
from tests.report.crafted import (
    clean_membership_result,
    membership_result,
    predict_result,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class _Checkpoint:
    source: str
    trusted_pickle: bool


@dataclass(frozen=True)
class _Result:
    checkpoint: _Checkpoint


def test_default_rules_load_and_are_complete() -> None:
    rules = load_rules()
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    assert {"CA-C001", "CA-M001", "CA-M002", "CA-M003", "CA-M004", "CA-M005", "CA-M006"} <= set(ids)
    for rule in rules:
        assert rule.help_uri and rule.help_uri.startswith("https://"), rule.id
        assert rule.description and len(rule.description) > 60, rule.id
        assert rule.tags, rule.id
        assert set(rule.commands) <= set(COMMANDS)
    membership = [r for r in rules if r.id.startswith("CA-M")]
    assert all("OWASP-ML04:membership-inference" in r.tags for r in membership)


# -- every default rule fires on a crafted result and stays quiet on a clean one ------------------
# A case returns (command, result on which the rule must fire, result on which no rule may fire).
# A default rule added without a case here fails test_every_default_rule_has_a_case.


def _membership(**firing: Any) -> Callable[[], tuple[str, Any, Any]]:
    def case() -> tuple[str, Any, Any]:
        return "membership", membership_result(**firing), clean_membership_result()

    return case


CASES: dict[str, Callable[[], tuple[str, Any, Any]]] = {
    "CA-C001": lambda: (
        "predict",
        predict_result(trusted_pickle=True),
        predict_result(trusted_pickle=False),
    ),
    "CA-M001": _membership(best_auc=0.93),
    "CA-M002": _membership(best_auc=0.57, tpr1=0.02, gap=0.0, tokenizer_auc=0.5),
    "CA-M003": _membership(best_auc=0.58, tpr1=0.2, gap=0.0, tokenizer_auc=0.5),
    "CA-M004": _membership(best_auc=0.62, tpr1=0.02, gap=0.3, tokenizer_auc=0.5),
    "CA-M005": _membership(best_auc=0.52, tpr1=0.01, gap=0.0, tokenizer_auc=0.7),
    "CA-M006": _membership(best_auc=0.52, tpr1=0.01, gap=0.0, tokenizer_auc=0.5, blind_auc=0.9),
}
CASES.update(harden_cases())
CASES.update(backdoor_cases())
CASES.update(poison_scan_cases())


def _audit_case() -> tuple[str, Any, Any]:
    from codeaudit.audit import AuditResult, CheckSection
    from codeaudit.report.model import Header

    def audit(failed: bool) -> AuditResult:
        section = CheckSection("backdoor", "Backdoor", None, "too few samples", failed=failed)
        return AuditResult(Header(command="audit"), (section,), checks_failed=int(failed))

    return "audit", audit(True), audit(False)


CASES["CA-A001"] = _audit_case


def test_every_default_rule_has_a_case() -> None:
    assert {r.id for r in load_rules()} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_default_rule_fires_on_crafted_and_not_on_clean(rule_id: str) -> None:
    rule = next(r for r in load_rules() if r.id == rule_id)
    command, firing, clean = CASES[rule_id]()
    fired = evaluate([rule], firing, command=command, target="models/m.pt")
    assert [f.rule_id for f in fired] == [rule_id]
    finding = fired[0]
    assert finding.severity is rule.severity and finding.target == "models/m.pt"
    assert "models/m.pt" in finding.message or rule_id == "CA-M002"
    assert "{" not in finding.message
    assert finding.tags == rule.tags and finding.command == command
    assert evaluate([rule], clean, command=command, target="models/m.pt") == ()
    # and the whole default rule set is quiet on the clean result
    assert evaluate(load_rules(), clean, command=command, target="m") == ()


def test_checkpoint_rule_reads_only_its_commands() -> None:
    rules = load_rules()
    fired = evaluate(rules, _Result(_Checkpoint("codeaudit", True)), command="predict", target="m")
    assert [f.rule_id for f in fired] == ["CA-C001"]
    assert (
        evaluate(rules, _Result(_Checkpoint("codeaudit", True)), command="train", target="m") == ()
    )


def test_a_metric_that_cannot_be_measured_fires_nothing() -> None:
    result = membership_result(best_auc=0.58, tpr1=None, gap=0.0, tokenizer_auc=0.5)
    assert result.best_tpr.tpr_at_fpr["0.01"] is None
    rule = next(r for r in load_rules() if r.id == "CA-M003")
    assert evaluate([rule], result, command="membership", target="m") == ()
    assert unresolved_metrics([rule], result, command="membership") == []


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
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "a.toml").write_text(RULE)
    (directory / "b.toml").write_text(RULE.replace("X-1", "X-2"))
    (directory / "notes.txt").write_text("not a rule file")
    assert {"X-1", "X-2"} <= {r.id for r in load_rules([directory])}


def test_a_user_rule_evaluates_with_its_template() -> None:
    rule = load_rule_file_from_text(RULE)
    result = predict_result()
    worse = dataclasses.replace(result, metrics=dataclasses.replace(result.metrics, accuracy=0.4))
    (finding,) = evaluate([rule], worse, command="predict", target="m.pt")
    assert finding.message == "accuracy 0.400 below 0.5 for m.pt"
    assert evaluate([rule], result, command="predict", target="m.pt") == ()


def load_rule_file_from_text(text: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.toml"
        path.write_text(text)
        return load_rule_file(path)[0]


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (('severity = "medium"', 'severity = "urgent"'), "severity", "'urgent' is not one of low"),
        (('op = "<"', 'op = "=~"'), "op", "'=~' is not one of"),
        (('metric = "metrics.accuracy"\n', ""), "metric", "missing"),
        (('metric = "metrics.accuracy"', 'metric = "metrics..x"'), "metric", "not a dotted path"),
        (('title = "t"', 'title = "t"\ncolour = "red"'), "colour", "unknown rule field"),
        (('commands = ["predict"]', "commands = []"), "commands", "non-empty list"),
        (('commands = ["predict"]', 'commands = ["predcit"]'), "commands", "'predcit'"),
        (("threshold = 0.5", "threshold = [1]"), "threshold", "number, boolean or string"),
        (("threshold = 0.5", 'threshold = "x"'), "threshold", "needs op == or !="),
        (("threshold = 0.5", "threshold = nan"), "threshold", "finite"),
        (("{target}", "{model}"), "message", "unknown placeholder {model}"),
        (("{target}", "{target"), "message", "bad template"),
        (("{target}", "{value:>99999}"), "message", "no format spec or conversion"),
        (("{target}", "{value!r}"), "message", "no format spec or conversion"),
        (("{target}", "{best[0]}"), "message", "unknown placeholder {best[0]}"),
        (('id = "X-1"', 'id = "X 1"'), "id", "is not an id"),
        (('title = "t"', 'title = "t"\nconfidence = "sure"'), "confidence", "'sure'"),
        (('title = "t"', 'title = "t"\nhelp_uri = "paper.pdf"'), "help_uri", "not an http"),
        (('title = "t"', 'title = "t"\ntags = "privacy"'), "tags", "list of non-empty"),
    ],
)
def test_bad_rules_fail_with_one_line_naming_file_rule_and_field(
    tmp_path: Path, edit: tuple[str, str], field: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    text = RULE.replace(*edit)
    assert text != RULE
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rule_file(path)
    error = str(info.value)
    assert "\n" not in error
    assert error.startswith(f"{path}: rule ")
    assert f"field '{field}'" in error and message in error, error


def test_file_level_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[rule]\n")
    with pytest.raises(RuleError, match=r"bad\.toml: invalid TOML"):
        load_rule_file(path)
    path.write_text(RULE + RULE)
    with pytest.raises(RuleError, match="rule X-1: field 'id': duplicate rule id"):
        load_rule_file(path)
    path.write_text("[rules]\nx = 1\n")
    with pytest.raises(RuleError, match="unknown top-level key 'rules'"):
        load_rule_file(path)
    path.write_text(RULE.replace('id = "X-1"\n', ""))
    with pytest.raises(RuleError, match=r"rule #1: field 'id': missing"):
        load_rule_file(path)
    with pytest.raises(RuleError, match="not found"):
        load_rules([tmp_path / "nope.toml"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuleError, match="holds no rule files"):
        load_rules([empty])


def test_a_metric_of_the_wrong_type_is_a_rule_error() -> None:
    rule = load_rule_file_from_text(RULE.replace("metrics.accuracy", "checkpoint.source"))
    with pytest.raises(RuleError, match="not a number"):
        evaluate([rule], predict_result(), command="predict", target="m")


def test_unresolved_metric_paths_are_reported() -> None:
    typo = load_rule_file_from_text(RULE.replace("metrics.accuracy", "metrics.acuracy"))
    (warning,) = unresolved_metrics([typo], predict_result(), command="predict")
    assert "rule X-1" in warning and "metrics.acuracy" in warning and "never fires" in warning
    assert unresolved_metrics(load_rules(), predict_result(), command="predict") == []
    assert unresolved_metrics(load_rules(), membership_result(), command="membership") == []


# -- selection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        (
            (),
            (),
            {
                "CA-A001",
                "CA-B001",
                "CA-B002",
                "CA-B003",
                "CA-B004",
                "CA-B005",
                "CA-B006",
                "CA-B007",
                "CA-B008",
                "CA-B009",
                "CA-B010",
                "CA-B011",
                "CA-B012",
                "CA-C001",
                "CA-M001",
                "CA-M002",
                "CA-M003",
                "CA-M004",
                "CA-M005",
                "CA-M006",
                "CA-H001",
                "CA-H002",
                "CA-H003",
                "CA-H004",
                "CA-H005",
                "CA-H006",
                "CA-H007",
                "CA-H008",
            },
        ),
        (("CA-M",), (), {"CA-M001", "CA-M002", "CA-M003", "CA-M004", "CA-M005", "CA-M006"}),
        (("ca-m00",), (), {"CA-M001", "CA-M002", "CA-M003", "CA-M004", "CA-M005", "CA-M006"}),
        (("CA-M",), ("CA-M003",), {"CA-M001", "CA-M002", "CA-M004", "CA-M005", "CA-M006"}),
        (
            (),
            ("CA-M",),
            {
                "CA-A001",
                "CA-B001",
                "CA-B002",
                "CA-B003",
                "CA-B004",
                "CA-B005",
                "CA-B006",
                "CA-B007",
                "CA-B008",
                "CA-B009",
                "CA-B010",
                "CA-B011",
                "CA-B012",
                "CA-C001",
                "CA-H001",
                "CA-H002",
                "CA-H003",
                "CA-H004",
                "CA-H005",
                "CA-H006",
                "CA-H007",
                "CA-H008",
            },
        ),
        (("CA-M001",), ("CA-M",), {"CA-M001"}),  # the longer (more specific) entry wins
        (("CA",), ("CA",), set()),  # a tie: ignore wins
        (("CA-C001", "CA-M005"), (), {"CA-C001", "CA-M005"}),
    ],
)
def test_select_and_ignore_by_prefix(
    select: tuple[str, ...], ignore: tuple[str, ...], expected: set[str]
) -> None:
    rules = load_rules()
    assert {r.id for r in select_rules(rules, select, ignore)} == expected
    assert all(is_selected(r.id, select, ignore) == (r.id in expected) for r in rules)


def test_a_selector_that_matches_nothing_is_an_error() -> None:
    rules = load_rules()
    check_selectors(rules, ("CA-M", "CA-C001"), "--select")
    known = r"--select CA-Z: matches no rule id \(known: CA-A001, CA-B001"
    with pytest.raises(RuleError, match=known):
        check_selectors(rules, ("CA-Z",), "--select")


# -- lookup and exit codes ------------------------------------------------------------------------


def test_lookup_paths() -> None:
    doc = {"best": {"auc": 0.9}, "attacks": [{"auc": 0.7}]}
    assert lookup(doc, "best.auc") == 0.9
    assert lookup(doc, "attacks.0.auc") == 0.7
    assert lookup(doc, "attacks.3.auc") is None and lookup(doc, "nope") is None
    assert lookup({"t": {"0.01": 0.4, "0": {"01": 9}}}, "t.0.01") == 0.4
    assert lookup({"t": {"0.01": None, "0": {"01": 9}}}, "t.0.01") == 9


def test_exit_codes_follow_fail_on() -> None:
    findings = (Finding("A", "t", Severity.MEDIUM, "m", "x"),)
    assert exit_code(findings, "low") == 1
    assert exit_code(findings, "medium") == 1
    assert exit_code(findings, "high") == 0
    assert exit_code(findings, "never") == 0
    assert exit_code((), "low") == 0


# -- packaging ------------------------------------------------------------------------------------


def test_the_wheel_maps_the_rules_directory_into_the_package() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert mapping == {"rules": "codeaudit/_rules"}
    shipped = {p.name for p in (ROOT / "rules").glob("*.toml")}
    assert {"checkpoint.toml", "membership.toml"} <= shipped
    # in a source checkout (no codeaudit/_rules) the top-level directory is read
    if not (ROOT / "codeaudit" / "_rules").exists():
        assert default_rules_dir() == ROOT / "rules"


@pytest.mark.slow
def test_a_built_wheel_carries_and_loads_the_rules(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("codeaudit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for source in (ROOT / "rules").glob("*.toml"):
        assert f"codeaudit/_rules/{source.name}" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "from codeaudit.rules import default_rules_dir, load_rules; "
        "print(default_rules_dir()); print(','.join(sorted(r.id for r in load_rules())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert out[0] == str(unpacked / "codeaudit" / "_rules")
    assert out[1] == ",".join(sorted(r.id for r in load_rules()))
    assert re.match(r"CA-C001,CA-M001", out[1])


@pytest.mark.parametrize("scope", ["head", "full"])
def test_repair_advice_never_suggests_the_scope_that_was_used(scope: str) -> None:
    from codeaudit.backdoor.check import next_steps

    _, firing, _ = backdoor_cases()["CA-B002"]()
    firing = dataclasses.replace(
        firing,
        unlearning=dataclasses.replace(
            firing.unlearning, scope=scope, accuracy_drop=0.05, **next_steps(scope)
        ),
    )
    found = {f.rule_id: f for f in evaluate(load_rules(), firing, command="backdoor", target="m")}
    survives, falls = found["CA-B002"].message, found["CA-B003"].message
    assert f"after {scope}-scope unlearning" in survives and f"{scope}-scope unlearning" in falls
    assert f"--unlearn-scope {scope}" not in survives + falls
    other = "full" if scope == "head" else "head"
    assert (f"--unlearn-scope {other}" in survives) == (scope == "head")
    assert (f"--unlearn-scope {other}" in falls) == (scope == "full")
    assert not survives.endswith("; -.") and found["CA-B003"].op == ">"


def test_dotted_placeholders_read_the_result() -> None:
    from codeaudit.rules import render_message

    document = {"unlearning": {"scope": "full", "n": 0.25, "none": None}}
    text = render_message(
        "{target} {unlearning.scope} {unlearning.n} {unlearning.none} {unlearning.gone}",
        document,
        target="m.pt",
    )
    assert text == "m.pt full 0.250 - -"


def test_repair_is_judged_against_the_clean_miss_rate_not_the_raw_attack_success() -> None:
    _, firing, _ = backdoor_cases()["CA-B002"]()
    u = firing.unlearning
    # the real trigger "succeeds" on 12% of victims, but the repaired model misses 11% of them
    # with no trigger at all: 1 point of excess is the model's own error, not a backdoor
    after = dataclasses.replace(u.after, asr_real=0.12, asr_real_all=0.12, miss_rate=0.11)
    repaired = dataclasses.replace(
        firing, unlearning=dataclasses.replace(u, after=after, asr_excess=0.01)
    )
    fired = {f.rule_id for f in evaluate(load_rules(), repaired, command="backdoor", target="m")}
    assert "CA-B002" not in fired
    survives = dataclasses.replace(
        firing, unlearning=dataclasses.replace(u, after=after, asr_excess=0.05)
    )
    fired = {f.rule_id for f in evaluate(load_rules(), survives, command="backdoor", target="m")}
    assert "CA-B002" in fired
