"""The release gate: rule selection, baselines and the exit code, applied to any result.

Commands compute findings with every rule that applies to them (:func:`codeaudit.rules.evaluate`).
:func:`apply_gate` then keeps the findings the user selected (``--select``/``--ignore``), drops
those already in a baseline report (``--baseline``, matched by rule id and target, never by metric
values), decides the exit code from ``--fail-on``, and records all of that in the report's header
(:class:`codeaudit.report.model.Gate`). It works on every result type that has ``header``,
``findings`` and ``warnings``; a combined result with ``sections`` (``codeaudit audit``) is
checked section by section for rules whose metric does not exist.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.errors import ReportError
from codeaudit.io import sha256_file
from codeaudit.report.model import BaselineInfo, Finding, Gate, exit_code, normalise_target, utc_now
from codeaudit.rules import Rule, is_selected, load_rules, select_rules, unresolved_metrics


@dataclass(frozen=True)
class GateSettings:
    fail_on: str = "low"
    rule_files: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    baseline: str | None = None
    config_file: str | None = None
    started: str | None = None


@dataclass(frozen=True)
class ReleaseGate:
    """The gate a run is judged by: its settings, the rules (loaded once, before any work) and
    the baseline report (read once). :mod:`codeaudit.runner` applies it to the result."""

    settings: GateSettings = GateSettings()
    rules: tuple[Rule, ...] | None = None
    baseline: Baseline | None = None

    def apply(self, result: Any) -> Any:
        return apply_gate(result, self.settings, rules=self.rules, baseline=self.baseline)


@dataclass(frozen=True)
class Baseline:
    path: str
    sha256: str
    keys: frozenset[tuple[str, str]]


def load_baseline(path: str | Path) -> Baseline:
    """The (rule id, target) keys of the findings in an earlier codeaudit JSON report."""
    p = Path(path)
    if not p.is_file():
        raise ReportError(f"{p}: baseline report not found")
    try:
        document = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{p}: cannot read baseline report: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{p}:{exc.lineno}: baseline is not JSON ({exc.msg}); pass a codeaudit JSON report"
        ) from None
    if isinstance(document, dict) and "runs" in document and "findings" not in document:
        raise ReportError(
            f"{p}: baseline is a SARIF file; pass a codeaudit JSON report (--report FILE.json)"
        )
    if not isinstance(document, dict) or document.get("tool") != "codeaudit":
        raise ReportError(f'{p}: baseline is not a codeaudit JSON report (no "tool": "codeaudit")')
    findings = document.get("findings")
    if not isinstance(findings, list):
        raise ReportError(f"{p}: baseline report has no 'findings' list")
    keys = set()
    for i, finding in enumerate(findings):
        if (
            not isinstance(finding, dict)
            or not isinstance(finding.get("rule_id"), str)
            or not isinstance(finding.get("target"), str)
        ):
            raise ReportError(f"{p}: findings[{i}] has no string 'rule_id' and 'target'")
        keys.add((finding["rule_id"], normalise_target(finding["target"])))
    return Baseline(str(p), sha256_file(p), frozenset(keys))


def parts(result: Any) -> list[tuple[str, Any]]:
    """(command, result) for each part of a result whose findings rules produce."""
    sections = getattr(result, "sections", None)
    if sections is not None:  # the audit: each check's result, and the audit's own
        own = [(result.header.command, result)]
        return [(s.check, s.result) for s in sections if s.result is not None] + own
    return [(result.header.command, result)]


def open_gate(settings: GateSettings, *, sources: Mapping[str, str] | None = None) -> ReleaseGate:
    """The gate for ``settings``, ready before any work: the rules loaded, every selector matched
    to a rule (an error names where the selector came from: ``sources["select"]``, by default the
    setting's name) and the baseline read."""
    from codeaudit.rules import check_selectors

    rules = tuple(load_rules(settings.rule_files))
    for name in ("select", "ignore"):
        check_selectors(rules, getattr(settings, name), (sources or {}).get(name, name))
    baseline = load_baseline(settings.baseline) if settings.baseline else None
    return ReleaseGate(settings, rules, baseline)


def apply_gate(
    result: Any,
    settings: GateSettings,
    *,
    rules: Sequence[Rule] | None = None,
    baseline: Baseline | None = None,
) -> Any:
    """``result`` with its findings selected and baselined, warnings for rules that can never
    fire on it, and a :class:`Gate` in its header."""
    if rules is None:
        rules = load_rules(settings.rule_files)
    if baseline is None and settings.baseline:
        baseline = load_baseline(settings.baseline)
    active = select_rules(rules, settings.select, settings.ignore)
    warnings = list(getattr(result, "warnings", ()))
    commands = set()
    for command, part in parts(result):
        commands.add(command)
        for warning in unresolved_metrics(active, part, command=command):
            if warning not in warnings:
                warnings.append(warning)
    findings: list[Finding] = [
        f for f in result.findings if is_selected(f.rule_id, settings.select, settings.ignore)
    ]
    baseline_info = None
    if baseline is not None:
        kept = [f for f in findings if f.key not in baseline.keys]
        suppressed = [f for f in findings if f.key in baseline.keys]
        baseline_info = BaselineInfo(
            path=baseline.path,
            sha256=baseline.sha256,
            suppressed=len(suppressed),
            suppressed_rules=tuple(f.rule_id for f in suppressed),
        )
        findings = kept
    code = exit_code(findings, settings.fail_on)
    gate = Gate(
        fail_on=settings.fail_on,
        exit_code=code,
        rules_evaluated=sum(any(r.applies_to(c) for c in commands) for r in active),
        rule_files=settings.rule_files,
        select=settings.select,
        ignore=settings.ignore,
        config_file=settings.config_file,
        baseline=baseline_info,
        started=settings.started,
        finished=utc_now(),
    )
    changes: dict[str, Any] = {
        "findings": tuple(findings),
        "header": dataclasses.replace(result.header, gate=gate),
    }
    if hasattr(result, "warnings"):
        changes["warnings"] = tuple(warnings)
    return dataclasses.replace(result, **changes)
