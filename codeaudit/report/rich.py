"""Terminal rendering with rich: the same :class:`~codeaudit.report.document.Document` the
Markdown and HTML reports draw, as text (so it can be tested like any string).

The terminal shows each section (its title and status, its plain-language summary, its
paragraphs and tables), the warnings, the findings and the release gate. Long tables are cut to
:data:`MAX_ROWS` rows (the report files hold them whole); figures, the verdict paragraph (the
section summaries say it piece by piece), the audited files and the rule settings are left to
the report files."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from codeaudit.report.document import Document, Figure, Paragraph, Table, build_document
from codeaudit.report.text import printable

MAX_ROWS = 15


def _esc(text: object) -> str:
    """Data as rich markup that shows it as written: markup escaped, control characters made
    visible (:func:`~codeaudit.report.text.printable`)."""
    return escape(printable(text))


_STATUS_STYLE = {
    "high risk": "bold red",
    "medium risk": "yellow",
    "low risk": "cyan",
    "none risk": "green",
    "backdoored": "bold red",
    "adversarial": "yellow",
    "clean": "green",
    "holds": "green",
    "partial": "bold red",
    "unverified": "yellow",
    "not run": "dim",
    "could not run": "bold red",
}


def _table(table: Table, console: Console) -> None:
    shown = table.rows[:MAX_ROWS]
    view = RichTable(title=_esc(table.title) if table.title else None, show_edge=False)
    numeric = table.numeric or (False,) * len(table.columns)
    for column, right in zip(table.columns, numeric, strict=True):
        # a terminal too narrow for a table wraps its cells rather than cutting them
        view.add_column(_esc(column), justify="right" if right else "left", overflow="fold")
    for row in shown:
        view.add_row(*(_esc(cell) for cell in row))
    console.print(view)
    more = len(table.rows) - len(shown)
    if more:
        console.print(f"[dim]… {more} more rows in the JSON, Markdown or HTML report[/]")
    if table.note:
        console.print(f"[dim]{_esc(table.note)}[/]", highlight=False)


def _section_title(title: str, status: str | None) -> str:
    if not status:
        return f"[bold]{_esc(title)}[/]"
    style = _STATUS_STYLE.get(status, "bold")
    return f"[bold]{_esc(title)}[/] [{style}]({_esc(status)})[/]"


def draw(document: Document, console: Console, *, gate: Any = None, n_findings: int = 0) -> None:
    """Draw a document on a console."""
    for section in document.sections:
        console.rule(_section_title(section.title, section.status), align="left")
        if section.summary:
            console.print(_esc(section.summary), highlight=False)
        for block in section.blocks:
            if isinstance(block, Paragraph):
                style = "bold" if block.emphasis else ""
                text = _esc(block.text)
                console.print(f"[{style}]{text}[/]" if style else text, highlight=False)
            elif isinstance(block, Table):
                _table(block, console)
            elif isinstance(block, Figure):
                console.print(
                    f"[dim]figure: {_esc(block.title)} (in the Markdown and HTML reports)[/]",
                    highlight=False,
                )
    for warning in document.warnings:
        console.print(f"[yellow]warning:[/] {_esc(warning)}", highlight=False)
    for finding in document.findings:
        severity = _esc(f"[{finding.severity.value}]")
        console.print(
            f"[bold red]{_esc(finding.rule_id)}[/] {severity} {_esc(finding.message)}",
            highlight=False,
        )
    if gate is not None:
        console.print(_gate_line(gate, n_findings), highlight=False)


def _gate_line(gate: Any, n: int) -> str:
    rules = gate.rules_evaluated
    parts = [f"{n} finding{'s' if n != 1 else ''}", f"{rules} rule{'s' if rules != 1 else ''}"]
    if gate.baseline is not None:
        parts.append(f"{gate.baseline.suppressed} suppressed by baseline {gate.baseline.path}")
    if gate.fail_on == "never":
        verdict = "[bold]gate off[/] (--fail-on never)"
    elif gate.exit_code == 0:
        verdict = f"[bold green]PASS[/] (fail on {gate.fail_on})"
    else:
        verdict = f"[bold red]FAIL[/] (fail on {gate.fail_on})"
    return f"{verdict}: {_esc(', '.join(parts))}"


def render_rich(result: Any, *, width: int = 100, color: bool = False) -> str:
    """The terminal report as text (with ANSI colour codes when ``color``)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, color_system="standard" if color else None
    )
    gate = getattr(getattr(result, "header", None), "gate", None)
    draw(
        build_document(result, figures=False),
        console,
        gate=gate,
        n_findings=len(getattr(result, "findings", ())),
    )
    return buffer.getvalue()
