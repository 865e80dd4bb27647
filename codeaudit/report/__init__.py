"""Report formats. Each format is a function from a result object to text."""

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


FORMATS: dict[str, Callable[[Any], str]] = {"rich": _rich, "json": _json}
# Report files: format by file extension.
EXTENSIONS: dict[str, str] = {".json": "json", ".txt": "rich"}


def render(result: Any, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    return FORMATS[fmt](result)


def format_for_path(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise UsageError(
            f"{path}: cannot tell the report format from {suffix or 'no'} extension (use {known})"
        )
    return EXTENSIONS[suffix]
