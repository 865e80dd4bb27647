"""Signals at the edges of a run, in real processes: during start-up imports (before the
command line has installed its handlers) and near the end (while the files are written). Either
the run is interrupted (exit 130, one line, nothing left) or it finishes (its own exit code, every
file complete, the report's recorded exit code the process's)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.harness import PRELOADED_MAIN, READY, REPO, World, files_under

# What the console script runs (codeaudit.entry), after the imports every command makes.
PRELOADED_ENTRY = PRELOADED_MAIN.replace(
    "codeaudit.cli.main()", "import codeaudit.entry\ncodeaudit.entry.main()"
)

# Sends this process SIGTERM the moment ``codeaudit.cli`` starts to import, then runs the real
# console-script entry point: the signal lands where only codeaudit.entry can catch it.
SIGNAL_DURING_IMPORT = """
import importlib.abc, os, signal, sys

class Trip(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "codeaudit.cli":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, Trip())
sys.argv = ["codeaudit", "--help"]
from codeaudit.entry import main
main()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_signal_during_start_up_imports_is_one_line_and_130() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_DURING_IMPORT],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert done.stderr.strip().splitlines() == ["codeaudit: interrupted"]
    assert done.stdout == ""


def _membership(world: World, out: Path) -> list[str]:
    """A run of a few seconds that writes three files: its report, a SARIF copy and a plot."""
    return [
        "membership",
        world.inputs["model"],
        "--members",
        world.inputs["members"],
        "--nonmembers",
        world.inputs["nonmembers"],
        "-o",
        str(out / "m.json"),
        "--report",
        str(out / "m.sarif"),
        "--plot",
        str(out / "roc.png"),
        "-q",
    ]


def _start(argv: list[str], cwd: Path) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELOADED_ENTRY, *argv],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().strip() == READY
    return proc, time.monotonic()


def test_sigterm_near_the_end_finishes_or_leaves_nothing(world: World, tmp_path: Path) -> None:
    base = tmp_path / "timed"
    base.mkdir()
    proc, started = _start(_membership(world, base), tmp_path)
    proc.communicate(timeout=300)
    assert proc.returncode in (0, 1)
    took = time.monotonic() - started
    outcomes = []
    # 0.1: interrupted even when the timed run was slowed by a busy machine (it sets the scale)
    for i, share in enumerate((0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05)):
        out = tmp_path / f"run{i}"
        out.mkdir()
        proc, started = _start(_membership(world, out), tmp_path)
        time.sleep(max(0.0, started + share * took - time.monotonic()))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=300)
        code = proc.returncode
        outcomes.append(code)
        if code == 130:
            assert stderr.strip().splitlines()[-1] == "codeaudit: interrupted", stderr
            assert files_under(out) == [], (share, files_under(out))
        else:
            assert code in (0, 1), (share, code, stderr[-2000:])
            assert files_under(out) == ["m.json", "m.sarif", "roc.png"], files_under(out)
            report = json.loads((out / "m.json").read_text())
            sarif = json.loads((out / "m.sarif").read_text())
            assert sarif["runs"][0]["invocations"][0]["exitCode"] == code
            if report.get("gate") is not None:
                assert report["gate"]["exit_code"] == code
    assert 130 in outcomes  # the early ones were interrupted: the sweep covered the end
    assert any(code != 130 for code in outcomes)  # and the late ones finished
