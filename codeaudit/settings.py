"""Project settings: the ``[tool.codeaudit]`` table of the nearest ``pyproject.toml``.

::

    [tool.codeaudit]
    rules = ["ci/codeaudit-rules"]   # rule files or directories, relative to this pyproject.toml
    select = ["CA-M", "CA-C"]        # rule id prefixes to use (default: all)
    ignore = ["CA-M005"]             # rule id prefixes to drop
    fail-on = "high"                 # low | medium | high | critical | never
    format = "rich"                  # what goes to standard output
    threads = 2                      # or "auto" (the default): see codeaudit.threads

The nearest file is the first ``pyproject.toml`` with a ``[tool.codeaudit]`` table found from
the working directory upwards (as ruff finds ``[tool.ruff]``). Command-line flags win over these
settings: a flag given replaces the setting of the same name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.errors import UsageError
from codeaudit.report.model import FAIL_ON_CHOICES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STDOUT_FORMATS = ("rich", "json", "sarif", "markdown", "html")
KEYS = ("rules", "select", "ignore", "fail-on", "format", "threads")


class SettingsError(UsageError):
    """A ``[tool.codeaudit]`` table that cannot be used."""


@dataclass(frozen=True)
class ProjectSettings:
    path: str | None = None  # the pyproject.toml read; None: none found
    rules: tuple[str, ...] | None = None  # resolved against the file's directory
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    fail_on: str | None = None
    format: str | None = None
    threads: int | None = None  # None: auto


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None


def find_pyproject(start: str | Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``pyproject.toml`` (from ``start`` upwards) with a ``[tool.codeaudit]``
    table, and that table."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            tool = _read(candidate).get("tool", {})
            if isinstance(tool, dict) and "codeaudit" in tool:
                return candidate, tool["codeaudit"]
    return None


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SettingsError(f"{path}: [tool.codeaudit] {key}: must be a list of strings")
    return tuple(value)


def _choice(path: Path, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(
            f"{path}: [tool.codeaudit] {key}: {value!r} is not one of {', '.join(choices)}"
        )
    return str(value)


def _threads(path: Path, value: Any) -> int | None:
    from codeaudit.threads import parse_threads

    try:
        return parse_threads(value, "")
    except UsageError:
        raise SettingsError(
            f"{path}: [tool.codeaudit] threads: {value!r} is not 'auto' or a whole number >= 1"
        ) from None


def parse_settings(path: Path, table: Any) -> ProjectSettings:
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.codeaudit] must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise SettingsError(
            f"{path}: [tool.codeaudit] {unknown[0]}: unknown setting (known: {', '.join(KEYS)})"
        )
    rules = None
    if "rules" in table:
        rules = tuple(
            str((path.parent / p).resolve()) if not Path(p).is_absolute() else p
            for p in _strings(path, "rules", table["rules"])
        )
    return ProjectSettings(
        path=str(path),
        rules=rules,
        select=_strings(path, "select", table["select"]) if "select" in table else None,
        ignore=_strings(path, "ignore", table["ignore"]) if "ignore" in table else None,
        fail_on=_choice(path, "fail-on", table["fail-on"], FAIL_ON_CHOICES)
        if "fail-on" in table
        else None,
        format=_choice(path, "format", table["format"], STDOUT_FORMATS)
        if "format" in table
        else None,
        threads=_threads(path, table["threads"]) if "threads" in table else None,
    )


def load_project_settings(start: str | Path | None = None) -> ProjectSettings:
    found = find_pyproject(start)
    if found is None:
        return ProjectSettings()
    return parse_settings(*found)
