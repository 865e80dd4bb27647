"""examples/ci/audit.sh, the CI release gate, run as a CI system would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.report.test_sarif import SARIF_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ci_script_builds_the_example_model_and_gates_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "N": "200",
        "EPOCHS": "4",
        "FAIL_ON": "high",
        "PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        ["bash", str(ROOT / "examples" / "ci" / "audit.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    reports = tmp_path / "out" / "reports"
    report = json.loads((reports / "audit.json").read_text())
    assert report["command"] == "audit" and report["gate"]["fail_on"] == "high"
    assert report["gate"]["exit_code"] == done.returncode
    assert f"exit status: {done.returncode}" in done.stdout
    jsonschema.validate(json.loads((reports / "audit.sarif").read_text()), SARIF_SCHEMA)
    for name in ("audit.md", "audit.html", "audit.txt", "audit.membership-roc.png"):
        assert (reports / name).stat().st_size > 0
    # a second run with the first report as baseline: nothing new, so the gate passes
    env["BASELINE"] = str(tmp_path / "baseline.json")
    (tmp_path / "baseline.json").write_text((reports / "audit.json").read_text())
    again = subprocess.run(
        ["bash", str(ROOT / "examples" / "ci" / "audit.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    second = json.loads((reports / "audit.json").read_text())
    assert second["findings"] == []
    assert second["gate"]["baseline"]["suppressed"] == len(report["findings"])


def test_the_workflow_runs_the_script_and_uploads_sarif() -> None:
    workflow = (ROOT / "examples" / "ci" / "model-audit.yml").read_text()
    assert "examples/ci/audit.sh" in workflow
    assert "github/codeql-action/upload-sarif" in workflow
    assert "security-events: write" in workflow
    assert "audit-out/reports/audit.sarif" in workflow
