"""A format-neutral report document that every renderer draws (terminal, Markdown, HTML).

A result describes itself: its ``describe(figures)`` method returns :class:`Section` objects (a
plain-language summary sentence, then paragraphs, tables and figures), built by a module next to
the result (``codeaudit/<check>/sections.py``), so no renderer needs to know any result type::

    @dataclass(frozen=True)
    class HardenResult:
        ...
        def describe(self, figures: bool = True) -> list[Section]:
            from codeaudit.defense.sections import harden_sections

            return harden_sections(self, figures)

``figures`` is False when the output cannot hold images, so plots need not be drawn.
:func:`build_document` adds what every report has: a title, a one-paragraph verdict on top for a
reader who is not an ML specialist (what was checked, what was found, whether the release gate
passed), the findings, then the sections, warnings, the audited files with their sha256, and the
rule settings. A result type without ``describe`` still renders (its scalar fields as a table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from codeaudit.report.model import Finding, Severity, to_jsonable


@dataclass(frozen=True)
class Paragraph:
    text: str
    emphasis: bool = False


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None
    numeric: tuple[bool, ...] = ()  # right-align these columns
    note: str | None = None


@dataclass(frozen=True)
class Figure:
    title: str
    png: bytes | None  # None when the output cannot hold images (figures=False)
    alt: str
    slug: str  # file-name part for formats that write figures beside the report
    caption: str | None = None


Block = Paragraph | Table | Figure


@dataclass(frozen=True)
class Section:
    title: str
    summary: str  # one or two plain-language sentences, used in the verdict on top
    blocks: tuple[Block, ...] = ()
    status: str | None = None  # e.g. "high risk", "not run", "could not run"


@dataclass(frozen=True)
class Document:
    title: str
    verdict: str
    passed: bool | None  # None: no gate (a command without rules)
    status: str  # "PASS", "FAIL", "FINDINGS", "NO FINDINGS"
    findings: tuple[Finding, ...]
    findings_table: Table | None
    sections: tuple[Section, ...]
    warnings: tuple[str, ...]
    inputs: Table | None
    settings: Table | None
    meta: tuple[tuple[str, str], ...] = field(default=())


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value) or "-"
    return str(value)


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def checkpoint_fact(info: Any) -> str:
    """How the model was loaded and what it reads, in one line."""
    text = info.source + (" (loaded by full unpickling)" if info.trusted_pickle else "")
    reads = []
    if info.input_format:
        reads.append(f"{info.input_format} text")
    if info.max_len:
        reads.append(f"at most {info.max_len} ids")
    if info.outputs == 1:
        reads.append("one logit (sigmoid)")
    return text + (f"; reads {', '.join(reads)}" if reads else "")


def _generic_sections(result: Any, figures: bool) -> list[Section]:
    """Fallback for a result type without a builder: its scalar fields as one table."""
    document = to_jsonable(result)
    rows = [
        (key, fmt(value))
        for key, value in document.items()
        if key not in ("header", "findings", "warnings")
        and (value is None or isinstance(value, (str, int, float, bool)))
    ]
    name = type(result).__name__
    return [
        Section(
            title=name,
            summary=f"The {result.header.command} command produced a {name}.",
            blocks=(Table(("field", "value"), tuple(rows), numeric=(False, True)),),
        )
    ]


def sections_for(result: Any, figures: bool) -> list[Section]:
    """The result's own sections, or its scalar fields when it describes nothing."""
    describe = getattr(result, "describe", None)
    if callable(describe):
        return list(describe(figures))
    return _generic_sections(result, figures)


_SEVERITY_WORDS = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
}


def _count_phrase(findings: Sequence[Finding]) -> str:
    counts = []
    for severity in sorted(Severity, key=lambda s: -s.rank):
        n = sum(f.severity is severity for f in findings)
        if n:
            counts.append(f"{n} {_SEVERITY_WORDS[severity]}")
    return ", ".join(counts)


def verdict_paragraph(result: Any, sections: Sequence[Section]) -> tuple[str, bool | None, str]:
    """(the plain-language verdict, whether the gate passed, a one-word status)."""
    header = result.header
    gate = header.gate
    findings = tuple(getattr(result, "findings", ()))
    model = header.artifact("model")
    target = f"the model {model.path}" if model is not None else "the inputs"
    checks = [s.title.lower() for s in sections if s.status not in ("not run", "could not run")]
    what = " and ".join(checks) if checks else header.command
    parts = [f"codeaudit {header.command} checked {target} ({what})."]
    parts += [s.summary for s in sections if s.summary]
    if findings:
        worst = findings[0]
        parts.append(
            f"It found {len(findings)} problem{'s' if len(findings) != 1 else ''} "
            f"({_count_phrase(findings)}); the most serious: {worst.title.rstrip('.')}."
        )
    elif gate is not None and gate.rules_evaluated == 0:
        parts.append(f"No rules apply to {header.command} results.")
    elif gate is not None:
        found = (
            "Its one rule found no problem"
            if gate.rules_evaluated == 1
            else f"None of its {gate.rules_evaluated} rules found a problem"
        )
        parts.append(f"{found} (a rule fires when a measured risk crosses its threshold).")
    warned = len(getattr(result, "warnings", ()) or ())
    if warned:
        parts.append(
            f"{'A warning' if warned == 1 else f'{warned} warnings'} below "
            f"{'says' if warned == 1 else 'say'} what to check before relying on these numbers."
        )
    passed: bool | None = None
    if gate is not None:
        if gate.baseline is not None and gate.baseline.suppressed:
            n = gate.baseline.suppressed
            parts.append(
                f"{n} further finding{'s' if n != 1 else ''} already in the baseline report "
                f"{'were' if n != 1 else 'was'} left out."
            )
        passed = gate.exit_code == 0 if gate.fail_on != "never" else None
        if gate.fail_on == "never":
            parts.append("The release gate is off (--fail-on never): this report never fails.")
        elif passed:
            parts.append(
                f"Release gate: PASS (no finding of {gate.fail_on} severity or worse; "
                f"exit code {gate.exit_code})."
            )
        else:
            parts.append(
                f"Release gate: FAIL (findings of {gate.fail_on} severity or worse; "
                f"exit code {gate.exit_code}): do not release this model until they are fixed "
                "or accepted in a baseline."
            )
    status = (
        ("PASS" if passed else "FAIL")
        if passed is not None and gate is not None and gate.fail_on != "never"
        else ("FINDINGS" if findings else "NO FINDINGS")
    )
    return " ".join(parts), passed, status


def _measured(finding: Finding) -> tuple[str, str]:
    """The value and the condition that fired (``> 0.02``); a yes/no rule's condition is its
    title, so it shows neither (not "yes" beside "yes")."""
    if isinstance(finding.threshold, bool):
        return "", ""
    limit = (
        f"{finding.threshold:g}" if isinstance(finding.threshold, float) else fmt(finding.threshold)
    )
    return fmt(finding.value), f"{finding.op} {limit}" if finding.op else limit


def findings_table(findings: Sequence[Finding]) -> Table | None:
    if not findings:
        return None
    rows = tuple((f.severity.value, f.rule_id, f.title, f.message, *_measured(f)) for f in findings)
    return Table(
        ("severity", "rule", "title", "what it means", "value", "fires when"),
        rows,
        numeric=(False, False, False, False, True, True),
    )


def _inputs(result: Any) -> Table | None:
    artifacts = result.header.artifacts
    if not artifacts:
        return None
    return Table(
        ("role", "path", "sha256"),
        tuple((a.role, a.path, a.sha256 or "-") for a in artifacts),
        title="Audited files",
    )


def _settings(result: Any) -> Table | None:
    gate = result.header.gate
    if gate is None:
        return None
    rows = [
        ("fail on", gate.fail_on),
        ("exit code", str(gate.exit_code)),
        ("rules evaluated", str(gate.rules_evaluated)),
        ("select", ", ".join(gate.select) or "all"),
        ("ignore", ", ".join(gate.ignore) or "-"),
        ("extra rule files", ", ".join(gate.rule_files) or "-"),
        ("settings file", gate.config_file or "-"),
    ]
    if gate.baseline is not None:
        rows.append(
            (
                "baseline",
                f"{gate.baseline.path} ({gate.baseline.suppressed} finding(s) suppressed)",
            )
        )
    return Table(("setting", "value"), tuple(rows), title="Rules and release gate")


def all_warnings(result: Any) -> tuple[str, ...]:
    """The result's warnings, then (combined results) each section's, prefixed by its check."""
    warnings = list(getattr(result, "warnings", ()))
    for section in getattr(result, "sections", None) or ():
        if getattr(section, "result", None) is not None:
            warnings += [f"{section.check}: {w}" for w in getattr(section.result, "warnings", ())]
    return tuple(warnings)


def training_privacy(result: Any) -> Any:
    """The DP guarantee the audited model's training recorded (a ``TrainingPrivacy``), from the
    result's checkpoint or, for a combined result, its first check's; None when none."""
    results = [result, *(getattr(s, "result", None) for s in getattr(result, "sections", ()) or ())]
    for item in results:
        privacy = getattr(getattr(item, "checkpoint", None), "privacy", None)
        if privacy is not None:
            return privacy
    return getattr(result, "privacy", None)  # train's own result


def build_document(result: Any, *, figures: bool = True) -> Document:
    header = result.header
    sections = tuple(sections_for(result, figures))
    privacy = training_privacy(result)
    if privacy is not None and sections and getattr(result, "privacy", None) is None:
        # a report on a model trained with --dp (train's own report has it in its table)
        first = sections[0]
        note = Paragraph(f"The model's training recorded a guarantee: {privacy.describe()}.")
        sections = (replace(first, blocks=(note, *first.blocks)), *sections[1:])
    verdict, passed, status = verdict_paragraph(result, sections)
    findings = tuple(getattr(result, "findings", ()))
    meta = [
        ("tool", f"{header.tool} {header.version}"),
        ("command", header.command),
        ("created", header.created),
    ]
    if header.seed is not None:
        meta.append(("seed", str(header.seed)))
    if header.threads is not None:
        meta.append(("threads", header.threads.describe()))
    if privacy is not None:  # the model's training recorded a DP guarantee
        meta.append(("training privacy", privacy.describe()))
    return Document(
        title=f"codeaudit {header.command} report",
        verdict=verdict,
        passed=passed,
        status=status,
        findings=findings,
        findings_table=findings_table(findings),
        sections=sections,
        warnings=all_warnings(result),
        inputs=_inputs(result),
        settings=_settings(result),
        meta=tuple(meta),
    )
