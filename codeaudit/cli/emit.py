"""The edge's output: the release gate applied to a result, every report file checked before the
first is written and then written atomically, the report on standard output."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

PROJECT = "codeaudit.project"  # ctx.meta: the [tool.codeaudit] settings in force
GATE = "codeaudit.gate"  # ctx.meta: the ReleaseGate of a command with rule options
EMITTED = "codeaudit.emitted"  # ctx.meta: the result as reported (after the gate)


def project_settings(ctx: click.Context) -> Any:
    """The ``[tool.codeaudit]`` settings of the nearest pyproject.toml (none with --no-config)."""
    from codeaudit.settings import ProjectSettings, load_project_settings

    if PROJECT not in ctx.meta:
        ctx.meta[PROJECT] = (
            ProjectSettings() if ctx.params.get("no_config") else load_project_settings()
        )
    return ctx.meta[PROJECT]


def reported(ctx: click.Context) -> Any:
    """The result as the command reported it (None before :func:`emit`)."""
    return ctx.meta.get(EMITTED)


def check_reports(paths: tuple[str, ...], force: bool) -> list[tuple[str, str]]:
    """Validate report paths before any work: known extension, writable, no clobbering."""
    from codeaudit.io import check_output_path
    from codeaudit.report import format_for_path

    seen: set[str] = set()
    checked = []
    for path in paths:
        if os.path.abspath(path) in seen:
            continue
        seen.add(os.path.abspath(path))
        fmt = format_for_path(path)
        check_output_path(path, force=force, what="report")
        if fmt == "markdown":  # its figures are written beside it: their names must fit too
            from pathlib import Path

            from codeaudit.io import check_name_length

            target = Path(path)
            stem = target.name.rsplit(".", 1)[0] if "." in target.name else target.name
            check_name_length(target.with_name(stem + "." + "x" * FIGURE_NAME_ROOM))
        checked.append((path, fmt))
    return checked


FIGURE_NAME_ROOM = 24  # bytes a Markdown report's figure adds to its stem: ".membership-roc-2.png"


def run_files(reports: list[tuple[str, str]], *inputs: tuple[str, str | None]) -> list:
    """The files of this run that only the command line knows, for the runner's check that no
    output is an input or another output (:func:`codeaudit.io.refuse_same_files`): the report
    files, the figures each Markdown report writes beside itself (``DIR/STEM.*.png``), and
    inputs that are not the check's (the baseline, a key file)."""
    import glob

    files = [("input", what, path) for what, path in inputs if path]
    for path, fmt in reports:
        files.append(("output", "report", path))
        if fmt == "markdown":
            target = os.path.abspath(path)
            name = os.path.basename(target)
            stem = name.rsplit(".", 1)[0] if "." in name else name
            where = os.path.realpath(os.path.dirname(target))
            pattern = os.path.join(where, glob.escape(stem) + ".*.png")
            files.append(("pattern", f"figures of the Markdown report {path}:", pattern))
    return files


def _baseline(ctx: click.Context | None = None) -> str | None:
    gate = gate_of(ctx)
    return getattr(getattr(gate, "settings", None), "baseline", None)


def inputs_of_the_edge(key_file: str | None = None) -> tuple[tuple[str, str | None], ...]:
    """Inputs a command reads that its check does not declare: the baseline report, a key file."""
    return (("baseline", _baseline()), ("key file", key_file))


def refuse_clashes(reports: list[tuple[str, str]], *outputs: str | None) -> None:
    """A report must not name a file the command writes as its product."""
    named = {os.path.abspath(o) for o in outputs if o}
    if any(os.path.abspath(path) in named for path, _ in reports):
        raise click.UsageError("--report names the same file as another output")


def output_width(default: int = 100) -> int:
    """Columns for the terminal report: ``COLUMNS`` when set, else the width of the terminal
    the user watches (standard output's, or standard error's or input's when output goes to a
    pipe such as ``| tee log``), else ``default`` (a file, a CI log)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) >= 20:
        return int(columns)
    for stream in (sys.stdout, sys.stderr, sys.stdin):
        try:
            return max(20, os.get_terminal_size(stream.fileno()).columns)
        except (AttributeError, OSError, ValueError):
            continue
    return default


def gate_of(ctx: click.Context | None = None) -> Any:
    """The release gate the command's rule options set up (None for a command without rules)."""
    ctx = ctx or click.get_current_context(silent=True)
    return ctx.meta.get(GATE) if ctx is not None else None


def emit(result: Any, fmt: str, reports: list[tuple[str, str]], force: bool) -> Any:
    """Write every report file of a result (judged by the runner), print the report, and return
    the result as reported.

    Every file (reports and the figures Markdown reports write beside them) is rendered and
    checked before the first is written, so a clash leaves no partial output."""
    from codeaudit.io import atomic_write, check_output_path
    from codeaudit.report import render, render_file

    ctx = click.get_current_context(silent=True)
    files: list[tuple[str, bytes]] = []
    for path, report_fmt in reports:
        files += render_file(result, report_fmt, path)
    seen: set[str] = set()
    for path, _ in files:
        key = os.path.abspath(path)
        if key in seen:
            raise click.UsageError(f"{path}: two reports would write this file")
        seen.add(key)
        check_output_path(path, force=force, what="report")
    for path, data in files:
        atomic_write(path, lambda handle, data=data: handle.write(data), force=force)
    project = ctx.meta.get(PROJECT) if ctx is not None else None
    if project is not None and project.path:  # a settings file changed this run: say which
        from codeaudit.report.text import printable

        click.echo(f"codeaudit: using settings from {printable(project.path, one_line=True)}",
                   err=True)  # fmt: skip
    if fmt == "rich":
        from codeaudit.report.rich import render_rich

        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        click.echo(render_rich(result, color=color, width=output_width()), nl=False)
    else:
        click.echo(render(result, fmt), nl=False)
    if ctx is not None:
        ctx.meta[EMITTED] = result
    return result
