"""Progress where there is no terminal: log lines on standard error, one per stage kind and a
heartbeat, and none for a run too short to need them."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.cli import cli
from codeaudit.cli import progress as progress_module
from codeaudit.cli.progress import LogProgress, _kind


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(log: LogProgress, clock: FakeClock, events: list[tuple[float, object]]) -> list[str]:
    """Advance the clock through ``events`` (seconds, event or None), letting the writer look
    after each, as its thread does once a second."""
    out = []
    for seconds, event in events:
        clock.now += seconds
        if event is not None:
            log(*event)
        line = log._line(clock.now)
        if line is not None:
            out.append(line)
    return out


def test_stage_kinds_counters_and_details_do_not_count() -> None:
    assert _kind("epoch 2/8 (loss 0.4121)") == _kind("epoch 3/8 (evaluating)") == "epoch"
    assert _kind("membership: features") != _kind("membership: trained attacks")


def test_lines_after_the_quiet_start_on_change_and_as_a_heartbeat() -> None:
    clock = FakeClock()
    log = LogProgress("training", io.StringIO(), quiet_start=15, every=60, clock=clock)
    lines = _lines(
        log,
        clock,
        [
            (1, ("epoch 1/8 (loss 0.7)", 1, 80)),  # too early: nothing
            (13, ("epoch 1/8 (loss 0.6)", 5, 80)),
            (2, ("epoch 1/8 (loss 0.5)", 9, 80)),  # 16 s: the first line
            (10, ("epoch 2/8 (loss 0.4)", 20, 80)),  # same kind within 60 s: nothing
            (10, ("measuring", 0, 1)),  # a new kind: a line
            (30, None),
            (31, None),  # 61 s without news: the heartbeat says so
            (5, None),
        ],
    )
    assert lines == [
        "[00:16] training: epoch 1/8 (loss 0.5) 9/80",
        "[00:36] training: measuring 0/1",
        "[01:37] training: still on measuring 0/1, no news for 61 s",
    ]


def test_nothing_before_any_event_but_loading() -> None:
    clock = FakeClock()
    log = LogProgress("auditing", io.StringIO(), quiet_start=0, every=60, clock=clock)
    assert _lines(log, clock, [(1, None)]) == ["[00:01] auditing: loading and checking the inputs"]


def test_the_thread_writes_and_says_when_it_ended() -> None:
    stream = io.StringIO()
    with LogProgress("predicting", stream, quiet_start=0, every=60, tick=0.01) as log:
        log("predicting", 3, 10)
        time.sleep(0.2)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "codeaudit: [00:00] predicting: predicting 3/10"
    assert lines[-1] == "codeaudit: [00:00] predicting: done" and len(lines) == 2
    failed = io.StringIO()
    with pytest.raises(RuntimeError), LogProgress("x", failed, quiet_start=0, tick=0.01) as log:
        log("a", 1, 2)
        time.sleep(0.1)
        raise RuntimeError  # the error line comes next: no "done"
    assert "done" not in failed.getvalue()


def test_cli_logs_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, planted_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_cli import TINY

    monkeypatch.setattr(progress_module, "QUIET_START", 0.0)
    monkeypatch.setattr(progress_module, "TICK", 0.01)
    args = ["train", str(planted_files["train"]), "--epochs", "2", "--arch", "lstm", *TINY]
    args += ["--format", "json", "--force", "-o"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "m.pt")])
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # the report alone on stdout
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("codeaudit: [") for line in lines), lines
    assert any("training: " in line for line in lines) and lines[-1].endswith("training: done")
    quiet = CliRunner().invoke(cli, [*args, str(tmp_path / "q.pt"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
