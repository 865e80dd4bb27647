"""Rules are data: TOML files that turn a command's result into findings.

A rule file holds ``[[rule]]`` tables::

    [[rule]]
    id = "CA-M001"              # stable id, unique
    title = "..."
    severity = "high"           # low | medium | high | critical
    confidence = "high"         # low | medium | high
    commands = ["membership"]   # which commands' results it reads
    metric = "best.auc"         # dotted path into the command's JSON report
    op = ">="                   # == != > >= < <=
    threshold = 0.6
    message = "... {value} ... {threshold} ... {target}"
    help_uri = "https://..."    # the method's paper or documentation
    tags = ["OWASP-ML04:membership-inference"]

The default rules ship inside the package (``codeaudit/_rules``, built from the top-level
``rules/`` directory); in a source checkout the top-level directory is read directly.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.errors import CodeAuditError
from codeaudit.report.model import Finding, Severity, to_jsonable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RuleError(CodeAuditError):
    """A rule file that cannot be used."""


OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
CONFIDENCE = ("low", "medium", "high")
_REQUIRED = ("id", "title", "severity", "commands", "metric", "op", "threshold", "message")
_OPTIONAL = ("confidence", "description", "help_uri", "tags")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    commands: tuple[str, ...]
    metric: str
    op: str
    threshold: float | bool | str
    message: str
    confidence: str = "medium"
    help_uri: str | None = None
    tags: tuple[str, ...] = ()
    source: str = ""

    def applies_to(self, command: str) -> bool:
        return command in self.commands


def _rule_from_table(table: Any, where: str) -> Rule:
    if not isinstance(table, dict):
        raise RuleError(f"{where}: a rule must be a table")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise RuleError(f"{where}: rule is missing {', '.join(missing)}")
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise RuleError(f"{where}: unknown rule field(s) {', '.join(unknown)}")
    rule_id = table["id"]
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleError(f"{where}: rule id must be a non-empty string")
    where = f"{where} ({rule_id})"
    try:
        severity = Severity(table["severity"])
    except ValueError:
        raise RuleError(
            f"{where}: severity {table['severity']!r} is not one of "
            f"{', '.join(s.value for s in Severity)}"
        ) from None
    confidence = table.get("confidence", "medium")
    if confidence not in CONFIDENCE:
        raise RuleError(f"{where}: confidence {confidence!r} is not one of low, medium, high")
    if table["op"] not in OPERATORS:
        raise RuleError(f"{where}: op {table['op']!r} is not one of {' '.join(OPERATORS)}")
    commands = table["commands"]
    if (
        not isinstance(commands, list)
        or not commands
        or not all(isinstance(c, str) for c in commands)
    ):
        raise RuleError(f"{where}: commands must be a non-empty list of command names")
    threshold = table["threshold"]
    if not isinstance(threshold, (int, float, bool, str)):
        raise RuleError(f"{where}: threshold must be a number, boolean or string")
    for key in ("title", "metric", "message"):
        if not isinstance(table[key], str) or not table[key].strip():
            raise RuleError(f"{where}: {key} must be a non-empty string")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RuleError(f"{where}: tags must be a list of strings")
    return Rule(
        id=rule_id,
        title=table["title"],
        severity=severity,
        commands=tuple(commands),
        metric=table["metric"],
        op=table["op"],
        threshold=threshold,
        message=table["message"],
        confidence=confidence,
        help_uri=table.get("help_uri"),
        tags=tuple(tags),
        source=where,
    )


def load_rule_file(path: Path) -> list[Rule]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"{path}: cannot read rule file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: invalid TOML: {exc}") from None
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise RuleError(f"{path}: 'rule' must be an array of tables ([[rule]])")
    rules = [_rule_from_table(table, f"{path}: rule {i + 1}") for i, table in enumerate(tables)]
    ids = [rule.id for rule in rules]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise RuleError(f"{path}: duplicate rule id {', '.join(duplicated)}")
    return rules


def default_rules_dir() -> Path:
    packaged = Path(__file__).parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


def load_rules(paths: Iterable[str | Path] = (), *, defaults: bool = True) -> list[Rule]:
    """The default rules, then rules from each file or directory; a later rule with the same id
    replaces an earlier one."""
    sources: list[Path] = [default_rules_dir()] if defaults else []
    sources += [Path(p) for p in paths]
    rules: dict[str, Rule] = {}
    for source in sources:
        if source.is_dir():
            files = sorted(source.glob("*.toml"))
        elif source.is_file():
            files = [source]
        else:
            raise RuleError(f"{source}: rule file or directory not found")
        for file in files:
            for rule in load_rule_file(file):
                rules[rule.id] = rule
    return list(rules.values())


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (``best.auc``, ``attacks.0.auc``), or None when absent. Keys
    that themselves contain dots match too (``best.tpr_at_fpr.0.01``)."""
    parts = path.split(".")

    def walk(value: Any, i: int) -> Any:
        if i == len(parts):
            return value
        if isinstance(value, Mapping):
            for j in range(len(parts), i, -1):  # longest key first
                key = ".".join(parts[i:j])
                if key in value:
                    found = walk(value[key], j)
                    if found is not None:
                        return found
            return None
        if isinstance(value, list) and parts[i].isdigit() and int(parts[i]) < len(value):
            return walk(value[int(parts[i])], i + 1)
        return None

    return walk(document, 0)


def evaluate(
    rules: Iterable[Rule], result: Any, *, command: str, target: str
) -> tuple[Finding, ...]:
    """Findings for the rules of ``command`` whose comparison holds on ``result``."""
    document = to_jsonable(result)
    findings = []
    for rule in rules:
        if not rule.applies_to(command):
            continue
        value = lookup(document, rule.metric)
        if value is None:
            continue
        try:
            fired = OPERATORS[rule.op](value, rule.threshold)
        except TypeError:
            raise RuleError(
                f"{rule.source}: cannot compare {rule.metric}={value!r} with {rule.threshold!r}"
            ) from None
        if not fired:
            continue
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        try:
            message = rule.message.format(value=shown, threshold=rule.threshold, target=target)
        except (KeyError, IndexError, ValueError):
            raise RuleError(f"{rule.source}: bad placeholder in message") from None
        findings.append(
            Finding(
                rule_id=rule.id,
                title=rule.title,
                severity=rule.severity,
                message=message,
                target=target,
                metric=rule.metric,
                value=value if isinstance(value, (int, float, str)) else str(value),
                threshold=rule.threshold,
                help_uri=rule.help_uri,
            )
        )
    findings.sort(key=lambda f: (-f.severity.rank, f.rule_id))
    return tuple(findings)
