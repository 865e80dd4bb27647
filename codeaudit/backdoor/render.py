"""How a :class:`~codeaudit.backdoor.poison.PoisonResult` is shown: the terminal view and the
Markdown/HTML sections (both register themselves when :mod:`codeaudit.backdoor.poison` is
imported, which every PoisonResult's existence implies)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from codeaudit.report.document import Paragraph, Section, Table, fmt, section_builder
from codeaudit.report.rich import _warnings, rich_renderer

_LABELS = {0: "not vulnerable", 1: "vulnerable"}
SHOWN_IDS = 10


def _trigger_text(result: Any) -> str:
    if result.trigger is None:
        return "random dead code from the grammar family (one per sample)"
    return repr(result.trigger)


def _summary(result: Any) -> str:
    return (
        f"{result.poisoned} of {result.n_victim} victim-label functions "
        f"(label {result.victim_label}, {_LABELS[result.victim_label]}) got the "
        f"{result.trigger_type} trigger and label "
        f"{result.target_label} ({_LABELS[result.target_label]}); the other "
        f"{result.n_samples - result.poisoned} records are unchanged."
    )


@rich_renderer("PoisonResult")
def render_poison(result: Any, console: Console) -> None:
    console.print(f"[bold]poisoned[/] {escape(_summary(result))}", highlight=False)
    table = RichTable(show_edge=False, show_header=False)
    table.add_column("property")
    table.add_column("value")
    rows = [
        ("trigger", f"{result.trigger_type}: {_trigger_text(result)}"),
        ("rate", f"{result.rate:g} of {result.rate_base} -> {result.requested} requested"),
        ("passed over (no place)", str(result.no_place)),
        ("languages", ", ".join(f"{k} {v}" for k, v in result.languages.items())),
    ]
    for artifact in result.header.artifacts:
        rows.append((artifact.role, f"{artifact.path}  sha256 {(artifact.sha256 or '-')[:16]}…"))
    ids = ", ".join(result.poisoned_ids[:SHOWN_IDS])
    more = len(result.poisoned_ids) - SHOWN_IDS
    rows.append(("poisoned ids", ids + (f" (+{more} more in the manifest)" if more > 0 else "")))
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    _warnings(result, console)


@section_builder("PoisonResult")
def poison_sections(result: Any, figures: bool) -> list[Section]:
    facts = Table(
        ("property", "value"),
        (
            ("trigger type", result.trigger_type),
            ("trigger", _trigger_text(result)),
            ("target label", f"{result.target_label} ({_LABELS[result.target_label]})"),
            ("rate", f"{result.rate:g} of the {result.rate_base}"),
            (
                "samples / victim-label / requested",
                f"{result.n_samples} / {result.n_victim} / {result.requested}",
            ),
            ("poisoned", str(result.poisoned)),
            ("passed over (no place for the trigger)", str(result.no_place)),
            ("invalid records skipped", str(result.skipped_invalid)),
            ("clean samples already holding the trigger", str(result.already_triggered)),
            ("languages", fmt([f"{k} {v}" for k, v in result.languages.items()])),
        ),
        title="Poisoning",
    )
    ids = Table(
        ("#", "poisoned id"),
        tuple((str(i + 1), pid) for i, pid in enumerate(result.poisoned_ids)),
        title="Poisoned samples",
        numeric=(True, False),
    )
    blocks: list[Any] = [facts, ids]
    if result.example is not None:
        blocks.append(Paragraph(f"Example ({result.example[0]}):\n\n{result.example[1]}"))
    return [Section("Poisoning", summary=_summary(result), blocks=tuple(blocks))]
