"""``codeaudit audit``: planning, the combined result, and one real run on a tiny model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from codeaudit.audit import CHECKS, INPUTS, AuditCheck, AuditResult, plan, run_audit
from codeaudit.check import Check, Context, Inputs, Outcome
from codeaudit.cli import cli
from codeaudit.config import AuditConfig
from codeaudit.errors import UsageError
from codeaudit.report import FORMATS, render
from tests.report.crafted import membership_result, predict_result
from tests.report.test_sarif import SARIF_SCHEMA


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "nothing to audit"),
        ({"members": "m"}, "needs --members and --nonmembers (missing --nonmembers)"),
        ({"checks": ("backdoor",)}, "the backdoor check needs --data (missing --data)"),
        ({"checks": ("nosuch",)}, "--checks nosuch: not a check of this build"),
        ({"checks": ("membership",)}, "missing --members, --nonmembers"),
    ],
)
def test_plan_refuses_what_it_cannot_run(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(UsageError) as info:
        plan(AuditConfig(model="m.pt", **kwargs))
    assert needle in str(info.value)
    assert [c.name for c in plan(AuditConfig(model="m", members="a", nonmembers="b"))] == [
        "membership"
    ]


def test_every_input_names_a_check() -> None:
    assert {c for c in INPUTS.values()} >= set(CHECKS)
    for check in CHECKS.values():
        assert all(INPUTS[i] == check.name for i in check.inputs)


def test_cli_usage_errors_come_before_any_work(tmp_path: Path) -> None:
    code, _, err = run("audit", str(tmp_path / "missing.pt"), "--data", "d.jsonl")
    assert code == 2 and err.count("\n") == 1 and "missing.pt" in err
    code, _, err = run("audit", "m.pt", "--members", "m.jsonl", "--report", "x.pdf")
    assert code == 2 and "nonmembers" in err
    out = tmp_path / "reports"
    code, _, err = run("audit", "m.pt", "--report-dir", str(out))
    assert code == 2 and "nothing to audit" in err and not out.exists()


class _Crafted(Check):
    """A check that needs no model and returns a crafted result (the rules still judge it)."""

    needs_model = False

    def __init__(self, command: str, make: Any) -> None:
        self.command = command  # type: ignore[misc]
        self.make = make

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        return Outcome(self.make(target=config.model, trusted_pickle=True))


def test_combined_result_with_a_second_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape the backdoor check plugs into: two sections, one findings list, one gate."""
    from codeaudit.config import PredictConfig

    membership = dataclasses.replace(
        CHECKS["membership"], check=lambda: _Crafted("membership", membership_result)
    )
    second = AuditCheck(
        "second",
        "Second check",
        ("data",),
        lambda: _Crafted("predict", predict_result),
        lambda config: PredictConfig(model=config.model, data=config.data or ""),
    )
    monkeypatch.setitem(CHECKS, "membership", membership)
    monkeypatch.delitem(CHECKS, "backdoor")  # "second" takes its --data here
    monkeypatch.delitem(CHECKS, "poison-scan")
    monkeypatch.delitem(INPUTS, "train_data")
    monkeypatch.setitem(CHECKS, "second", second)
    monkeypatch.setitem(INPUTS, "data", "second")
    result = run_audit(AuditConfig(model="models/model.pt", members="m", nonmembers="n", data="d"))
    assert isinstance(result, AuditResult)
    assert [s.check for s in result.sections] == ["membership", "second"]
    assert all(s.result.findings == () for s in result.sections)  # moved to the combined list
    ids = [f.rule_id for f in result.findings]
    assert ids.count("CA-C001") == 1  # both checks fired it on the same model: reported once
    assert ids == ["CA-C001", "CA-M001", "CA-M003", "CA-M004", "CA-M005"]
    assert result.header.artifacts == ()  # crafted checks read no files (see the end-to-end test)
    for fmt in FORMATS:
        text = render(result, fmt)
        assert text.strip()
    md = render(result, "markdown")
    assert "## Membership inference (high risk)" in md and "## Predictions" in md
    only = run_audit(AuditConfig(model="models/model.pt", members="m", nonmembers="n"))
    assert [s.check for s in only.sections] == ["membership", "second"]
    assert only.sections[1].result is None and "needs --data" in only.sections[1].reason
    assert "Not run: not requested" in render(only, "markdown")


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.membership.test_audit import memorising_model

    return memorising_model(tmp_path_factory.mktemp("audit"), 60)


def test_audit_end_to_end_every_format_and_a_baseline(leaky: dict[str, Path], tmp_path: Path):
    args = [
        "audit",
        str(leaky["model"]),
        "--members",
        str(leaky["members"]),
        "--nonmembers",
        str(leaky["nonmembers"]),
        "--bootstrap",
        "20",
        "-q",
    ]
    out = tmp_path / "first"
    code, stdout, err = run(*args, "--report-dir", str(out), "--format", "json")
    assert code == 1, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "audit.html",
        "audit.json",
        "audit.md",
        "audit.membership-roc.png",
        "audit.sarif",
        "audit.txt",
    ]
    report = json.loads((out / "audit.json").read_text())
    assert report == json.loads(stdout)
    assert report["command"] == "audit" and report["sections"][0]["check"] == "membership"
    membership = report["sections"][0]["result"]
    assert membership["best"]["auc"] >= 0.8 and membership["findings"] == []
    ids = [f["rule_id"] for f in report["findings"]]
    assert "CA-M001" in ids and report["gate"]["exit_code"] == 1
    assert report["model"]["sha256"] and report["members"]["sha256"]
    sarif = json.loads((out / "audit.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ids
    assert "Release gate: FAIL" in (out / "audit.md").read_text()
    assert "data:image/png;base64," in (out / "audit.html").read_text()
    assert "FAIL" in (out / "audit.txt").read_text()
    # writing again refuses to overwrite, and leaves the first reports alone
    before = (out / "audit.json").read_text()
    code, _, err = run(*args, "--report-dir", str(out))
    assert code == 2 and "exists" in err and (out / "audit.json").read_text() == before
    # the baseline: the same problems are not reported again
    code, stdout, err = run(*args, "--baseline", str(out / "audit.json"), "--format", "json")
    again = json.loads(stdout)
    assert code == 0, err
    assert again["findings"] == [] and again["gate"]["baseline"]["suppressed"] == len(ids)


def test_a_check_that_cannot_run_keeps_the_others_and_fails_the_gate(
    leaky: dict[str, Path], tmp_path: Path
) -> None:
    """--data too small for the backdoor scan: the membership section is kept, the backdoor
    section says why it could not run, CA-A001 fails the gate, the reports are written."""
    report = tmp_path / "audit.json"
    args = ["audit", str(leaky["model"]), "--members", str(leaky["members"])]
    args += ["--nonmembers", str(leaky["nonmembers"]), "--data", str(leaky["nonmembers"])]
    code, stdout, err = run(
        *args, "--bootstrap", "20", "-q", "-o", str(report), "--format", "markdown"
    )
    assert code == 1, err
    data = json.loads(report.read_text())
    sections = {s["check"]: s for s in data["sections"]}
    membership, backdoor, scan = (sections[c] for c in ("membership", "backdoor", "poison-scan"))
    assert scan["result"] is None and not scan["failed"]
    assert membership["check"] == "membership" and membership["result"]["best"]["auc"] >= 0.8
    assert backdoor["check"] == "backdoor" and backdoor["failed"] and backdoor["result"] is None
    assert "classified correctly" in backdoor["reason"]
    assert data["checks_failed"] == 1
    assert "CA-A001" in [f["rule_id"] for f in data["findings"]]
    assert "## Backdoor (could not run)" in stdout and "Could not run: " in stdout
    # accepted knowingly: the same audit passes the gate on membership alone
    code, _, err = run(*args, "--bootstrap", "20", "-q", "--ignore", "CA-A001,CA-M")
    assert code == 0, err


def test_a_report_dir_the_run_made_goes_with_a_failed_write(
    leaky: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codeaudit.io
    from codeaudit.errors import OutputError

    real = codeaudit.io.atomic_write

    def failing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith("audit.md"):
            raise OutputError(f"{path}: disk full")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(codeaudit.io, "atomic_write", failing)
    out = tmp_path / "reports"
    args = ["audit", str(leaky["model"]), "--members", str(leaky["members"])]
    args += ["--nonmembers", str(leaky["nonmembers"]), "--bootstrap", "20", "-q"]
    code, _, err = run(*args, "--report-dir", str(out))
    assert code == 2 and "disk full" in err
    assert not out.exists()  # made by the run, emptied by its roll-back, then removed
    kept = tmp_path / "kept"
    kept.mkdir()  # a directory the user made stays, empty
    code, _, _ = run(*args, "--report-dir", str(kept))
    assert code == 2 and kept.is_dir() and list(kept.iterdir()) == []


def test_training_data_is_scanned_and_handed_to_the_backdoor_check(
    leaky: dict[str, Path], tmp_path: Path
) -> None:
    """--train-data runs the model-free poison-scan check (CA-B007 on planted data) and goes to
    the backdoor check too, whose verdict it then decides."""
    from codeaudit.audit import _backdoor_config
    from tests.backdoor.helpers import clean_records
    from tests.conftest import write_jsonl

    config = AuditConfig(model="m.pt", data="d.jsonl", train_data="t.jsonl")
    assert {c.name for c in plan(config)} == {"backdoor", "poison-scan"}
    assert _backdoor_config(config).train_data == "t.jsonl"
    assert [c.name for c in plan(AuditConfig(model="m.pt", train_data="t"))] == ["poison-scan"]
    clean = write_jsonl(tmp_path / "train.jsonl", clean_records(400, 1))
    poisoned = tmp_path / "poisoned.jsonl"
    code, _, err = run(
        "poison", str(clean), "-o", str(poisoned), "--trigger-type", "identifier",
        "--trigger", "testo_init", "--rate", "0.15", "--seed", "0", "-q",
    )  # fmt: skip
    assert code == 0, err
    report = tmp_path / "audit.json"
    args = ["audit", str(leaky["model"]), "--train-data"]
    code, _, err = run(*args, str(poisoned), "-q", "-o", str(report))
    assert code == 1, err  # a likely planted trigger fails the gate
    data = json.loads(report.read_text())
    scan = next(s for s in data["sections"] if s["check"] == "poison-scan")
    assert scan["result"]["planted_trigger"]
    assert any("testo" in c["text"] for c in scan["result"]["likely_triggers"])
    assert "CA-B007" in [f["rule_id"] for f in data["findings"]]
    code, _, err = run(*args, str(clean), "-q", "-o", str(tmp_path / "clean.json"))
    assert code == 0, err  # the same data unpoisoned passes
