"""The write phase is all or nothing, and paths are shown as written (issue 16, round two)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.cli import cli
from tests.conftest import planted_records, write_jsonl

TINY = ["--epochs", "1", "--val-split", "0", "--embed-dim", "8", "--hidden-dim", "8",
        "--max-len", "32", "--min-freq", "1", "-q"]  # fmt: skip


def test_an_interrupt_while_writing_the_reports_removes_every_file_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codeaudit.io

    data = write_jsonl(tmp_path / "d.jsonl", planted_records(24, seed=1))
    real = codeaudit.io.atomic_write
    calls: list[str] = []

    def interrupted_on_the_second_report(path, write, *, force=False):  # type: ignore[no-untyped-def]
        calls.append(str(path))
        if len(calls) == 3:  # the model, the first report, then Ctrl-C or SIGTERM
            raise KeyboardInterrupt
        return real(path, write, force=force)

    monkeypatch.setattr(codeaudit.io, "atomic_write", interrupted_on_the_second_report)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["train", str(data), "-o", str(out / "m.pt"), "--report", str(out / "r.json"),
            "--report", str(out / "r.txt"), *TINY]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 130, result.stderr
    assert len(calls) == 3 and sorted(p.name for p in out.iterdir()) == []


def test_rich_markup_and_controls_in_paths_are_shown_as_written(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", planted_records(24, seed=1))
    out = tmp_path / "[bold]x" / "["  # paths end in "[bold]x/[/]m.pt": markup, were it read
    out.mkdir(parents=True)
    argv = ["train", str(data), "-o", str(out / "]m.pt"), "--report", str(out / "]r.txt"),
            *TINY]  # fmt: skip
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["]m.pt", "]r.txt"]
