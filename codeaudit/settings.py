"""Project settings: the ``[tool.codeaudit]`` table of the nearest ``pyproject.toml``.

::

    [tool.codeaudit]
    rules = ["ci/codeaudit-rules"]   # rule files or directories, relative to this pyproject.toml
    select = ["CA-M", "CA-C"]        # rule id prefixes to use (default: all)
    ignore = ["CA-M005"]             # rule id prefixes to drop
    fail-on = "high"                 # low | medium | high | critical | never
    format = "rich"                  # what goes to standard output
    threads = 2                      # or "auto" (the default): see codeaudit.threads

Which file counts: only the project's own. From the working directory upwards, the first
directory that holds a ``pyproject.toml`` or a ``.git`` entry is the project root and ends the
search; its ``pyproject.toml``'s ``[tool.codeaudit]`` table is used when it has one, and no
settings at all are used otherwise (a root without a ``pyproject.toml``, or whose file has no
such table). A ``pyproject.toml`` in a directory above the project root (a shared checkout
directory, ``/tmp``, a home directory) is never read, so it cannot turn the release gate off.
The file in effect is named in every report (the gate's ``config_file``, "settings file" in
Markdown and HTML) and on standard error when the report is written. Command-line flags win over
these settings: a flag given replaces the setting of the same name; ``--no-config`` ignores the
file. A ``pyproject.toml`` that is not a regular file, or is larger than
:data:`MAX_SETTINGS_FILE_BYTES`, is refused.
"""

from __future__ import annotations

import os
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


MAX_SETTINGS_FILE_BYTES = 1 << 20  # a pyproject.toml larger than 1 MiB is refused, not read


def _read(path: Path) -> dict[str, Any]:
    from codeaudit.io import read_small_file

    raw = read_small_file(path, MAX_SETTINGS_FILE_BYTES, "settings file", error=SettingsError)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None


def project_root(start: str | Path | None = None) -> Path | None:
    """The nearest directory from ``start`` (default: the working directory) upwards that
    holds a ``pyproject.toml`` or a ``.git`` entry (None: none up to the filesystem root)."""
    here = Path(start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if os.path.lexists(directory / "pyproject.toml") or os.path.lexists(directory / ".git"):
            return directory
    return None


def find_pyproject(start: str | Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The project root's ``pyproject.toml`` and its ``[tool.codeaudit]`` table, when it has
    one (see the module's docstring: nothing above the project root is read)."""
    root = project_root(start)
    if root is None:
        return None
    candidate = root / "pyproject.toml"
    if not os.path.lexists(candidate):
        return None
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
