"""Terminal control characters from data reach no person as controls (issue 16, round two):
one test per sink (terminal and .txt report, Markdown, the stderr error line, progress lines),
and JSON and SARIF keep the data exact."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner

from codeaudit.report import render
from codeaudit.report.markdown import md_escape, md_url, render_markdown
from codeaudit.report.rich import render_rich
from codeaudit.report.text import printable
from tests.report.crafted import predict_result

HOSTILE = (
    "\x1b[2J\x1b[H all checks passed"  # clear the screen, home the cursor
    "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"  # hidden hyperlink (OSC 8)
    "\x1b]52;c;ZXZpbA==\x07"  # clipboard write (OSC 52)
    "\x9b31m\x7f\u202eevil"  # C1 CSI, DEL, bidi override
)
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")


def _hostile_result():  # type: ignore[no-untyped-def]
    import dataclasses

    result = predict_result()
    first = dataclasses.replace(result.predictions[0], id=HOSTILE)
    return dataclasses.replace(result, predictions=(first, *result.predictions[1:]))


def _clean(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text[:300])


def test_printable_shows_controls_as_escapes() -> None:
    assert printable("a\x1b[2Jb\tc\nd") == "a\\x1b[2Jb\tc\nd"
    assert printable("a\tb\nc", one_line=True) == "a\\x09b\\x0ac"
    assert printable("\x9b\x7f\u202e\u2066") == "\\x9b\\x7f\\u202e\\u2066"
    assert printable("plain ünïcode 😀") == "plain ünïcode 😀"


def test_terminal_and_txt_report() -> None:
    result = _hostile_result()
    for text in (render_rich(result, color=True), render(result, "rich")):
        _clean(_no_style(text))
        assert "\\x1b" in text


def _no_style(text: str) -> str:
    """The text without the SGR colour codes rich itself writes (``ESC [ ... m``)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_markdown_report() -> None:
    text = render_markdown(_hostile_result())
    _clean(text)
    assert "\\\\x1b" in text  # shown, its backslash escaped for Markdown
    assert md_escape("see https://evil.example and www.evil.example or a@b.c") == (
        "see https\\://evil.example and www\\.evil.example or a\\@b.c"
    )
    assert md_url("https://x.example/a)![b](https://beacon.example/p.png") == (
        "https://x.example/a%29!%5Bb%5D%28https://beacon.example/p.png"
    )


def test_json_and_sarif_keep_the_data_exact() -> None:
    result = _hostile_result()
    report = render(result, "json")
    _clean(report)  # escaped by the serialiser, exact once read
    assert json.loads(report)["predictions"][0]["id"] == HOSTILE
    _clean(render(result, "sarif"))


def test_the_stderr_error_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from codeaudit.cli import cli

    missing = tmp_path / f"no{HOSTILE}.jsonl"
    result = CliRunner().invoke(cli, ["train", str(missing), "-o", str(tmp_path / "m.pt")])
    assert result.exit_code == 2
    _clean(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "\\x1b[2J" in result.stderr


def test_progress_lines() -> None:
    from codeaudit.cli.progress import LogProgress

    stream = io.StringIO()
    log = LogProgress(f"train{HOSTILE}", stream, quiet_start=0, every=0, tick=0.01)
    log(f"stage{HOSTILE}", 1, 2)
    line = log._line(log.clock() + 1)
    assert line is not None
    with log:
        pass
    stream.write(f"codeaudit: {printable(line, one_line=True)}\n")
    _clean(stream.getvalue())
