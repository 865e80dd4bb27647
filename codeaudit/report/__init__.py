"""Report formats. Each format is a function from a result object to text.

=========  ==========================  ===============================================
format     report-file extensions      notes
=========  ==========================  ===============================================
rich       .txt                        the terminal report (no colour in files)
json       .json                       every field of the result; the baseline format
sarif      .sarif, .sarif.json         SARIF 2.1.0 for GitHub code scanning
markdown   .md, .markdown              figures written beside the file as NAME.*.png
html       .html, .htm                 one self-contained file, figures inline
=========  ==========================  ===============================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeaudit.errors import UsageError


def _json(result: Any) -> str:
    from codeaudit.report.json import render_json

    return render_json(result)


def _rich(result: Any) -> str:
    from codeaudit.report.rich import render_rich

    return render_rich(result)


def _sarif(result: Any) -> str:
    from codeaudit.report.sarif import render_sarif

    return render_sarif(result)


def _markdown(result: Any) -> str:
    from codeaudit.report.markdown import render_markdown

    return render_markdown(result)


def _html(result: Any) -> str:
    from codeaudit.report.html import render_html

    return render_html(result)


FORMATS: dict[str, Callable[[Any], str]] = {
    "rich": _rich,
    "json": _json,
    "sarif": _sarif,
    "markdown": _markdown,
    "html": _html,
}
# Report files: format by file extension.
EXTENSIONS: dict[str, str] = {
    ".json": "json",
    ".sarif": "sarif",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "rich",
}


def render(result: Any, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    return FORMATS[fmt](result)


def render_file(result: Any, fmt: str, path: str) -> list[tuple[str, bytes]]:
    """Everything a report file needs, as (path, bytes): the report first, then any files it
    links to (Markdown figures, written beside it)."""
    if fmt == "markdown":
        from codeaudit.report.markdown import render_markdown_file

        target = Path(path)
        text, figures = render_markdown_file(result, target.name)
        return [(path, text.encode("utf-8"))] + [
            (str(target.with_name(name)), data) for name, data in figures
        ]
    return [(path, render(result, fmt).encode("utf-8"))]


def format_for_path(path: str) -> str:
    name = Path(path).name.lower()
    if name.endswith(".sarif.json"):
        return "sarif"
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise UsageError(
            f"{path}: cannot tell the report format from {suffix or 'no'} extension (use {known})"
        )
    return EXTENSIONS[suffix]
