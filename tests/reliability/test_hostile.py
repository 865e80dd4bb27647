"""The hostile-input corpus (tests/reliability/corpus.py) through the real command line.

Every case, through every command it applies to: exit 2 with exactly one stderr line that says
what and where (or the documented warning in the report and exit 0/1), never a traceback, never
a partial output file, and nothing created or changed next to the inputs (a payload that ran
would leave its marker file there).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from tests.reliability.corpus import CASES, MARKER, Run, expand
from tests.reliability.harness import (
    COMMANDS,
    World,
    files_under,
    invoke,
    one_line_error,
    read_report,
)

RUNS = expand(CASES, COMMANDS)
PARAMS = [pytest.param(r, id=r.id, marks=[pytest.mark.slow] if r.case.slow else []) for r in RUNS]


def _snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under root with the sha256 of its content (directories as 'dir')."""
    out = {}
    for path in sorted(root.rglob("*")):
        if any(path.relative_to(root).parts[0] == s for s in skip):
            continue
        if path.is_dir():
            out[str(path.relative_to(root))] = "dir"
        elif path.is_file() and os.access(path, os.R_OK):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path.relative_to(root))] = "special"
    return out


def _warnings(report: object) -> list[str]:
    """Every warning anywhere in a JSON report (an audit nests them in its sections)."""
    found: list[str] = []
    if isinstance(report, dict):
        for key, value in report.items():
            if key == "warnings" and isinstance(value, list):
                found += [str(v) for v in value]
            else:
                found += _warnings(value)
    elif isinstance(report, list):
        for value in report:
            found += _warnings(value)
    return found


def _unreadable_is_unreadable(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        probe.read_text()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o600)
    return False


def test_the_corpus_is_large_and_every_case_runs_somewhere() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    covered = {r.case.id for r in RUNS}
    assert covered == {c.id for c in CASES}


@pytest.mark.parametrize("run", PARAMS)
def test_hostile_input(run: Run, world: World, tmp_path: Path) -> None:
    case, command = run.case, COMMANDS[run.command]
    if case.needs_unreadable and not _unreadable_is_unreadable(tmp_path):
        pytest.skip("running with privileges that can read a mode-000 file")
    inputs_dir = tmp_path / "in"
    inputs_dir.mkdir()
    built = case.build(inputs_dir, world)
    inputs = dict(world.inputs)
    values: dict[str, str] = {}
    if isinstance(built, dict):
        values = dict(built)
        inputs.update({k: v for k, v in built.items() if k in inputs})
    else:
        values["path"] = built
        if case.slot == "data":
            assert command.data_slot is not None
            inputs[command.data_slot] = built
        elif case.slot == "model":
            assert command.model_slot is not None
            inputs[command.model_slot] = built
        elif case.slot != "none":
            inputs[case.slot] = built
    out = tmp_path / "out"
    out.mkdir()
    before = _snapshot(inputs_dir, case.may_change)
    argv = command.argv(inputs, str(out)) + [a.format(**values) for a in case.extra]

    outcome = invoke(argv)

    expect = case.expectation(run.command)
    allowed = expect.code if isinstance(expect.code, tuple) else (expect.code,)
    assert outcome.code in allowed, (outcome.code, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr + outcome.stdout
    assert not (inputs_dir / MARKER).exists(), "a payload ran"
    if os.path.exists(inputs_dir / "fifo.jsonl"):
        os.unlink(inputs_dir / "fifo.jsonl")
        before.pop("fifo.jsonl", None)
    assert _snapshot(inputs_dir, case.may_change) == before, "the inputs or their directory changed"
    if outcome.code == 2:
        line = one_line_error(outcome)
        assert expect.stderr is not None
        assert re.search(expect.stderr, line), line
        assert files_under(out) == [], "partial output"
        return
    assert outcome.stderr == "", outcome.stderr
    assert sorted(files_under(out)) == sorted(
        {str(Path(o)) for o in command.outputs}
        | {str(Path(o).parent) for o in command.outputs} - {"."}
    )
    report = read_report(out, command)
    if expect.warning is not None:
        warnings = _warnings(report)
        assert any(re.search(expect.warning, w) for w in warnings), warnings
    if expect.report is not None:
        expect.report(report)
    json.dumps(report)  # a plain JSON document
