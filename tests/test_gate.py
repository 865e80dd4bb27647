"""The release gate: select/ignore, baselines, --fail-on, [tool.codeaudit] settings and exit
codes, through the library and through the command line (with crafted results in place of
trained models, so these tests are fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codeaudit.cli import cli
from codeaudit.errors import ReportError
from codeaudit.gate import GateSettings, apply_gate, load_baseline
from codeaudit.report import render
from codeaudit.rules import load_rules
from codeaudit.settings import SettingsError, find_pyproject, load_project_settings
from tests.report.crafted import clean_membership_result, membership_result

FIRED = ["CA-M001", "CA-M003", "CA-M004", "CA-M005"]  # on the default crafted result


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codeaudit: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# -- library --------------------------------------------------------------------------------------


def test_the_crafted_result_fires_the_expected_rules() -> None:
    assert [f.rule_id for f in membership_result().findings] == FIRED


@pytest.mark.parametrize(
    ("settings", "kept", "code"),
    [
        (GateSettings(), FIRED, 1),
        (
            GateSettings(select=("CA-M00",), ignore=("CA-M003",)),
            ["CA-M001", "CA-M004", "CA-M005"],
            1,
        ),
        (GateSettings(select=("CA-M004", "CA-M005"), fail_on="high"), ["CA-M004", "CA-M005"], 0),
        (GateSettings(select=("CA-M004", "CA-M005"), fail_on="medium"), ["CA-M004", "CA-M005"], 1),
        (GateSettings(ignore=("CA-M",)), [], 0),
        (GateSettings(fail_on="critical"), FIRED, 0),
        (GateSettings(fail_on="never"), FIRED, 0),
    ],
)
def test_apply_gate_selects_and_decides(settings: GateSettings, kept: list[str], code: int):
    result = apply_gate(membership_result(), settings)
    assert [f.rule_id for f in result.findings] == kept
    gate = result.header.gate
    assert gate.exit_code == code and gate.fail_on == settings.fail_on
    assert gate.select == settings.select and gate.ignore == settings.ignore
    expected_rules = {r.id for r in load_rules() if "membership" in r.commands}
    from codeaudit.rules import is_selected

    assert gate.rules_evaluated == sum(
        is_selected(i, settings.select, settings.ignore) for i in expected_rules
    )


def _report(tmp_path: Path, result: Any, name: str = "before.json") -> Path:
    path = tmp_path / name
    path.write_text(render(result, "json"))
    return path


def test_baseline_suppresses_by_rule_and_target_not_value(tmp_path: Path) -> None:
    before = _report(tmp_path, apply_gate(membership_result(best_auc=0.93), GateSettings()))
    # a retrained model: other metric values, the same problems, one problem fixed, one new
    now = membership_result(best_auc=0.81, tpr1=0.05, gap=0.3, tokenizer_auc=0.72)
    assert [f.rule_id for f in now.findings] == ["CA-M001", "CA-M004", "CA-M005"]
    gated = apply_gate(now, GateSettings(baseline=str(before)))
    assert gated.findings == ()
    baseline = gated.header.gate.baseline
    assert baseline.suppressed == 3 and baseline.path == str(before)
    assert sorted(baseline.suppressed_rules) == ["CA-M001", "CA-M004", "CA-M005"]
    assert gated.header.gate.exit_code == 0
    # a new problem is reported
    worse = membership_result(best_auc=0.58, tpr1=0.3, gap=0.0, tokenizer_auc=0.5)
    old = _report(tmp_path, apply_gate(clean_membership_result(), GateSettings()), "clean.json")
    gated = apply_gate(worse, GateSettings(baseline=str(old)))
    assert [f.rule_id for f in gated.findings] == ["CA-M003"]
    assert gated.header.gate.baseline.suppressed == 0 and gated.header.gate.exit_code == 1


def test_baseline_targets_are_normalised_and_other_models_are_not_matched(tmp_path: Path):
    before = _report(tmp_path, membership_result(target="./models/../models/model.pt"))
    assert apply_gate(membership_result(), GateSettings(baseline=str(before))).findings == ()
    other = membership_result(target="models/other.pt")
    assert len(apply_gate(other, GateSettings(baseline=str(before))).findings) == 4


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "baseline is not JSON"),
        ('{"version": "2.1.0", "runs": []}', "SARIF"),
        ('{"tool": "other", "findings": []}', "not a codeaudit JSON report"),
        ('{"tool": "codeaudit"}', "no 'findings' list"),
        ('{"tool": "codeaudit", "findings": [{"rule_id": "X"}]}', "findings[0]"),
    ],
)
def test_bad_baselines(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=None) as info:
        load_baseline(path)
    assert needle in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ReportError, match="not found"):
        load_baseline(tmp_path / "missing.json")


def test_gate_warns_about_user_rules_that_can_never_fire(tmp_path: Path) -> None:
    rule = tmp_path / "r.toml"
    rule.write_text(
        '[[rule]]\nid = "X-1"\ntitle = "t"\nseverity = "low"\ncommands = ["membership"]\n'
        'metric = "best.acu"\nop = ">"\nthreshold = 0.5\nmessage = "m"\n'
    )
    gated = apply_gate(membership_result(), GateSettings(rule_files=(str(rule),)))
    assert any("X-1" in w and "best.acu" in w for w in gated.warnings)


# -- [tool.codeaudit] -----------------------------------------------------------------------------


def test_the_project_roots_pyproject_and_nothing_above_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.codeaudit]\nrules = ["ci/rules"]\nselect = ["CA-M"]\nfail-on = "high"\n'
        'format = "json"\nignore = "CA-M005"\n'
    )
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    found = find_pyproject(inner)  # no project root below: tmp_path's file is the project's
    assert found is not None and found[0] == tmp_path / "pyproject.toml"
    settings = load_project_settings(inner)
    assert settings.rules == (str((tmp_path / "ci" / "rules").resolve()),)
    assert settings.select == ("CA-M",) and settings.ignore == ("CA-M005",)
    assert settings.fail_on == "high" and settings.format == "json"
    assert load_project_settings(tmp_path.parent / "elsewhere-that-does-not-exist").path is None
    # a nearer project root ends the search, with or without a [tool.codeaudit] table
    (tmp_path / "pkg" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no table
    assert find_pyproject(inner) is None and load_project_settings(inner).path is None
    (tmp_path / "pkg" / "pyproject.toml").unlink()
    (tmp_path / "pkg" / ".git").mkdir()  # a repository without a pyproject.toml
    assert find_pyproject(inner) is None and load_project_settings(inner).path is None


def test_a_special_file_as_pyproject_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pyproject.toml")
    with pytest.raises(SettingsError, match="not a regular file"):
        load_project_settings(tmp_path)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('fail-on = "sometimes"', "fail-on: 'sometimes' is not one of"),
        ('format = "pdf"', "format: 'pdf'"),
        ("select = [1]", "select: must be a list of strings"),
        ('fail_on = "high"', "fail_on: unknown setting"),
    ],
)
def test_bad_settings(tmp_path: Path, table: str, needle: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.codeaudit]\n{table}\n")
    with pytest.raises(SettingsError) as info:
        load_project_settings(tmp_path)
    assert needle in str(info.value) and "pyproject.toml" in str(info.value)


# -- command line ---------------------------------------------------------------------------------


@pytest.fixture
def fake_membership(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`codeaudit membership` with the attacks replaced by a crafted result (judged by the rules
    the command passes on)."""
    from codeaudit import api

    knobs: dict[str, Any] = {}

    def fake(config: Any, progress: Any = None, gate: Any = None) -> Any:
        knobs["config"] = config
        result = membership_result(
            target=config.model, rules=load_rules(config.rules), **knobs.get("numbers", {})
        )
        return gate.apply(result) if gate is not None else result  # as the runner does

    monkeypatch.setattr(api, "membership", fake)
    return knobs


def membership(*extra: str) -> tuple[int, str, str]:
    return run(
        "membership", "models/model.pt", "--members", "m.jsonl", "--nonmembers", "n.jsonl", *extra
    )


def test_cli_exit_codes_0_1_2(fake_membership: dict[str, Any], tmp_path: Path) -> None:
    code, out, _ = membership("--format", "json")
    assert code == 1
    assert [f["rule_id"] for f in json.loads(out)["findings"]] == FIRED
    assert json.loads(out)["gate"]["exit_code"] == 1
    assert membership("--fail-on", "critical")[0] == 0
    assert membership("--select", "CA-M004,CA-M005", "--fail-on", "high")[0] == 0
    assert membership("--select", "CA-M004", "--select", "CA-M001", "--fail-on", "high")[0] == 1
    code, out, _ = membership("--ignore", "CA-M")
    assert code == 0 and "PASS" in out
    fake_membership["numbers"] = {"best_auc": 0.51, "tpr1": 0.01, "gap": 0.0, "tokenizer_auc": 0.5}
    assert membership()[0] == 0
    one_line_error(*membership("--select", "CA-Q")[::2], "--select CA-Q", "matches no rule")
    one_line_error(*membership("--fail-on", "sometimes")[::2], "--fail-on")
    one_line_error(*membership("--baseline", str(tmp_path / "no.json"))[::2], "not found")


def test_cli_rejects_a_bad_rule_file_before_any_work(
    fake_membership: dict[str, Any], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "X-1"\ntitle = "t"\nseverity = "urgent"\n')
    code, _, err = membership("--rules", str(bad), "--report", str(tmp_path / "r.json"))
    one_line_error(code, err, "bad.toml", "rule X-1", "field")
    assert "config" not in fake_membership  # nothing ran
    assert not (tmp_path / "r.json").exists()


def test_cli_baseline_round_trip(fake_membership: dict[str, Any], tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    assert membership("-o", str(first), "--fail-on", "never")[0] == 0
    code, out, _ = membership("--baseline", str(first), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["findings"] == []
    assert report["gate"]["baseline"]["suppressed"] == 4
    code, out, _ = membership("--baseline", str(first))
    assert "4 suppressed by baseline" in " ".join(out.split())


def test_pyproject_settings_apply_and_flags_win(
    fake_membership: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "ci"
    rules.mkdir()
    (rules / "extra.toml").write_text(
        '[[rule]]\nid = "ORG-1"\ntitle = "Any leakage"\nseverity = "critical"\n'
        'commands = ["membership"]\nmetric = "best.auc"\nop = ">"\nthreshold = 0.9\n'
        'message = "{target}: {value}"\n'
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.codeaudit]\nrules = ["ci"]\nselect = ["ORG", "CA-M001"]\n'
        'fail-on = "critical"\nformat = "json"\n'
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = membership()
    report = json.loads(out)  # format from pyproject
    assert [f["rule_id"] for f in report["findings"]] == ["ORG-1", "CA-M001"]
    assert code == 1  # ORG-1 is critical
    assert report["gate"]["config_file"] == str(tmp_path / "pyproject.toml")
    assert fake_membership["config"].rules == (str(rules.resolve()),)
    # flags win
    code, out, _ = membership("--select", "CA-M001", "--fail-on", "high", "--format", "markdown")
    assert code == 1 and out.startswith("# codeaudit membership report")
    code, out, _ = membership("--select", "CA-M001", "--fail-on", "critical")
    assert code == 0
    # --no-config ignores the file: default rules, rich output, fail on low
    code, out, _ = membership("--no-config")
    assert code == 1 and "Membership inference (high risk)" in out and "ORG-1" not in out
    (tmp_path / "pyproject.toml").write_text('[tool.codeaudit]\nselect = ["CA-X"]\n')
    code, _, err = membership()
    one_line_error(code, err, "pyproject.toml", "[tool.codeaudit] select CA-X", "matches no rule")
    (tmp_path / "pyproject.toml").write_text('[tool.codeaudit]\nfail-on = "sometimes"\n')
    one_line_error(*membership()[::2], "pyproject.toml", "fail-on")


def test_a_pyproject_above_the_repository_cannot_turn_the_gate_off(
    fake_membership: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.codeaudit]\nfail-on = "never"\n')
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    monkeypatch.chdir(repo)
    code, out, err = membership("--format", "json")
    assert code == 1 and err == "" and json.loads(out)["gate"]["config_file"] is None
    # the project's own file applies, is named in the report and on stderr (one line)
    (repo / "pyproject.toml").write_text('[tool.codeaudit]\nfail-on = "never"\n')
    code, out, err = membership("--format", "json")
    named = str(repo.resolve() / "pyproject.toml")
    assert code == 0 and json.loads(out)["gate"]["config_file"] == named
    assert err == f"codeaudit: using settings from {named}\n"


def test_reports_in_several_formats_at_once_and_no_partial_output(
    fake_membership: dict[str, Any], tmp_path: Path
) -> None:
    names = ["r.json", "r.sarif", "r.md", "r.html", "r.txt"]
    code, _, err = membership(*[a for n in names for a in ("--report", str(tmp_path / n))])
    assert code == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "r.membership-roc.png"])
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "r.txt").read_text().startswith("Membership inference (high risk)")
    # a figure that would clobber an existing file stops everything before anything is written
    other = tmp_path / "other"
    other.mkdir()
    (other / "s.membership-roc.png").write_bytes(b"keep")
    code, _, err = membership("--report", str(other / "s.json"), "--report", str(other / "s.md"))
    one_line_error(code, err, "s.membership-roc.png", "exists")
    assert sorted(p.name for p in other.iterdir()) == ["s.membership-roc.png"]
    assert membership("--report", str(other / "s.md"), "--force")[0] == 1
    assert (other / "s.membership-roc.png").read_bytes().startswith(b"\x89PNG")
