"""Rules are data: TOML files that turn a command's result into findings.

A rule file holds ``[[rule]]`` tables::

    [[rule]]
    id = "CA-M001"              # stable id, unique: letters/digits in dash-separated groups
    title = "..."               # one line; SARIF shortDescription
    description = "..."         # optional: what the rule means and what to do (SARIF help)
    severity = "high"           # low | medium | high | critical
    confidence = "high"         # low | medium | high (default medium)
    commands = ["membership"]   # which commands' results it reads
    metric = "best.auc"         # dotted path into the command's JSON report
    op = ">="                   # == != > >= < <=
    threshold = 0.6             # number; or boolean/string with == and !=
    message = "... {value} ... {threshold} ... {target} ... {metric}"
    help_uri = "https://..."    # the method's paper or documentation
    tags = ["OWASP-ML04:membership-inference"]

Every problem in a rule file is reported on load as one line naming the file, the rule and the
field (``rules/x.toml: rule CA-M009: field 'severity': 'urgent' is not one of ...``).

The default rules ship inside the package (``codeaudit/_rules``, built from the top-level
``rules/`` directory by the wheel's force-include); in a source checkout the top-level directory
is read directly.

Selection works like ruff's: ``select``/``ignore`` entries are id prefixes (``CA-M`` is every
membership rule); for each rule the longest matching entry decides, ``ignore`` winning a tie, and
with no ``select`` every rule is selected.
"""

from __future__ import annotations

import math
import operator
import re
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
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
    """A rule file that cannot be used, or a rule selector that matches nothing."""


OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
CONFIDENCE = ("low", "medium", "high")
# Commands whose results rules can read (issue-level names: a rule for a command that is not
# built yet loads fine and simply never fires).
COMMANDS = (
    "train",
    "predict",
    "membership",
    "harden",
    "backdoor",
    "poison",
    "poison-scan",
    "audit",
)
PLACEHOLDERS = ("value", "threshold", "target", "metric")
_PLACEHOLDER_LIST = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
_REQUIRED = ("id", "title", "severity", "commands", "metric", "op", "threshold", "message")
_OPTIONAL = ("confidence", "description", "help_uri", "tags")
ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*$")
_METRIC_PATTERN = re.compile(r"^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$")


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
    description: str | None = None
    help_uri: str | None = None
    tags: tuple[str, ...] = ()
    source: str = ""  # "FILE: rule ID", for error messages

    def applies_to(self, command: str) -> bool:
        return command in self.commands


def _check_fields(table: dict[str, Any], fail: Any) -> None:
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        fail(missing[0], f"missing (a rule needs {', '.join(_REQUIRED)})")
    unknown = sorted(set(table) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        fail(
            unknown[0],
            f"unknown rule field (known: {', '.join(_REQUIRED + _OPTIONAL)})",
        )


def _rule_from_table(table: Any, path: Path, index: int) -> Rule:
    if not isinstance(table, dict):
        raise RuleError(f"{path}: rule #{index}: a rule must be a table ([[rule]])")
    raw_id = table.get("id")
    label = raw_id if isinstance(raw_id, str) and raw_id.strip() else f"#{index}"
    where = f"{path}: rule {label}"

    def fail(field: str, problem: str) -> None:
        raise RuleError(f"{where}: field '{field}': {problem}")

    _check_fields(table, fail)
    if not isinstance(raw_id, str) or not ID_PATTERN.match(raw_id):
        fail("id", f"{raw_id!r} is not an id (letters and digits in dash-separated groups)")
    for key in ("title", "metric", "message"):
        if not isinstance(table[key], str) or not table[key].strip():
            fail(key, "must be a non-empty string")
    if "\n" in table["title"]:
        fail("title", "must be one line")
    if not _METRIC_PATTERN.match(table["metric"]):
        fail("metric", f"{table['metric']!r} is not a dotted path (e.g. best.auc)")
    severity_value = table["severity"]
    if severity_value not in [s.value for s in Severity]:
        fail(
            "severity",
            f"{severity_value!r} is not one of {', '.join(s.value for s in Severity)}",
        )
    confidence = table.get("confidence", "medium")
    if confidence not in CONFIDENCE:
        fail("confidence", f"{confidence!r} is not one of {', '.join(CONFIDENCE)}")
    op = table["op"]
    if op not in OPERATORS:
        fail("op", f"{op!r} is not one of {' '.join(OPERATORS)}")
    commands = table["commands"]
    if (
        not isinstance(commands, list)
        or not commands
        or not all(isinstance(c, str) for c in commands)
    ):
        fail("commands", "must be a non-empty list of command names")
    unknown_commands = [c for c in commands if c not in COMMANDS]
    if unknown_commands:
        fail("commands", f"unknown command {unknown_commands[0]!r} (use {', '.join(COMMANDS)})")
    threshold = table["threshold"]
    if isinstance(threshold, (bool, str)):
        if op not in ("==", "!="):
            fail("threshold", f"a {type(threshold).__name__} threshold needs op == or !=")
    elif isinstance(threshold, (int, float)):
        if not math.isfinite(threshold):
            fail("threshold", "must be finite")
    else:
        fail("threshold", "must be a number, boolean or string")
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(table["message"])
            if name is not None
        ]
    except ValueError as exc:
        fail("message", f"bad template ({exc})")
    for name, spec, conversion in fields:
        if spec or conversion:
            fail("message", f"placeholder {{{name}}}: no format spec or conversion allowed")
        if name not in PLACEHOLDERS and not ("." in name and _METRIC_PATTERN.match(name)):
            fail(
                "message",
                f"unknown placeholder {{{name}}} (use {_PLACEHOLDER_LIST}, or a dotted path "
                "into the result such as {unlearning.scope})",
            )
    description = table.get("description")
    if description is not None and (not isinstance(description, str) or not description.strip()):
        fail("description", "must be a non-empty string")
    help_uri = table.get("help_uri")
    if help_uri is not None and (
        not isinstance(help_uri, str) or not re.match(r"^https?://\S+$", help_uri)
    ):
        fail("help_uri", f"{help_uri!r} is not an http(s) URL")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        fail("tags", "must be a list of non-empty strings")
    return Rule(
        id=raw_id,
        title=table["title"],
        severity=Severity(severity_value),
        commands=tuple(commands),
        metric=table["metric"],
        op=op,
        threshold=threshold,
        message=table["message"],
        confidence=confidence,
        description=" ".join(description.split()) if description else None,
        help_uri=help_uri,
        tags=tuple(tags),
        source=where,
    )


MAX_RULE_FILE_BYTES = 1 << 20  # a rule file larger than 1 MiB is refused, not read
MAX_RULE_FILES = 1000  # a rules directory with more *.toml files is refused


def load_rule_file(path: str | Path) -> list[Rule]:
    from codeaudit.io import read_small_file

    path = Path(path)
    raw = read_small_file(path, MAX_RULE_FILE_BYTES, "rule file", error=RuleError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RuleError(f"{path}: cannot read rule file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"rule"})
    if unknown:
        raise RuleError(f"{path}: unknown top-level key '{unknown[0]}' (rules go in [[rule]])")
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise RuleError(f"{path}: 'rule' must be an array of tables ([[rule]])")
    rules = [_rule_from_table(table, path, i + 1) for i, table in enumerate(tables)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"{path}: rule {rule.id}: field 'id': duplicate rule id")
        seen.add(rule.id)
    return rules


def default_rules_dir() -> Path:
    packaged = Path(__file__).parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


def load_rules(paths: Iterable[str | Path] = (), *, defaults: bool = True) -> list[Rule]:
    """The default rules, then rules from each file or directory (``*.toml``, sorted); a later
    rule with the same id replaces an earlier one."""
    sources: list[Path] = [default_rules_dir()] if defaults else []
    sources += [Path(p) for p in paths]
    rules: dict[str, Rule] = {}
    for source in sources:
        if source.is_dir():
            # every *.toml entry is read as a rule file (a FIFO, a device or a symlink to one
            # among them is refused by load_rule_file, never waited on or read without end)
            files = sorted(source.glob("*.toml"))
            if not files and source != default_rules_dir():
                raise RuleError(f"{source}: directory holds no rule files (*.toml)")
            if len(files) > MAX_RULE_FILES:
                raise RuleError(
                    f"{source}: directory holds {len(files)} rule files, more than {MAX_RULE_FILES}"
                )
        elif source.exists():
            files = [source]  # a regular file, or something load_rule_file refuses
        else:
            raise RuleError(f"{source}: rule file or directory not found")
        for file in files:
            for rule in load_rule_file(file):
                rules[rule.id] = rule
    return list(rules.values())


# -- selection ------------------------------------------------------------------------------------


def _longest(rule_id: str, selectors: Sequence[str]) -> int:
    key = rule_id.upper()
    return max((len(s) for s in selectors if key.startswith(s.upper())), default=-1)


def is_selected(rule_id: str, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> bool:
    """Whether a rule id survives ``select``/``ignore`` (prefixes; the longest match decides)."""
    chosen = _longest(rule_id, select) if select else 0
    dropped = _longest(rule_id, ignore)
    if chosen < 0:
        return False
    return dropped < chosen if dropped >= 0 else True


def check_selectors(
    rules: Sequence[Rule], selectors: Sequence[str], option: str, *, where: str = ""
) -> None:
    """Every selector must match at least one known rule (a typo must not silently select or
    ignore nothing)."""
    ids = sorted(r.id for r in rules)
    for selector in selectors:
        if not isinstance(selector, str) or not selector.strip():
            raise RuleError(f"{where}{option}: empty rule selector")
        if not any(i.upper().startswith(selector.upper()) for i in ids):
            raise RuleError(
                f"{where}{option} {selector}: matches no rule id (known: {', '.join(ids)})"
            )


def select_rules(
    rules: Iterable[Rule], select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> list[Rule]:
    return [r for r in rules if is_selected(r.id, select, ignore)]


# -- evaluation -----------------------------------------------------------------------------------

_MISSING = object()


def _resolve(document: Any, path: str) -> Any:
    """The value at a dotted path, ``None`` when the path exists but holds null, and ``_MISSING``
    when the path does not exist. Keys that themselves contain dots match too."""
    parts = path.split(".")

    def walk(value: Any, i: int) -> Any:
        if i == len(parts):
            return value
        if isinstance(value, Mapping):
            found: Any = _MISSING
            for j in range(len(parts), i, -1):  # longest key first
                key = ".".join(parts[i:j])
                if key in value:
                    candidate = walk(value[key], j)
                    if candidate is not _MISSING and candidate is not None:
                        return candidate
                    if found is _MISSING:
                        found = candidate
            return found
        if isinstance(value, list) and parts[i].isdigit():
            if int(parts[i]) < len(value):
                return walk(value[int(parts[i])], i + 1)
            return None  # a list that is shorter this time: the value is absent, not the path
        if value is None:
            return None
        return _MISSING

    return walk(document, 0)


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (``best.auc``, ``attacks.0.auc``), or None when absent. Keys
    that themselves contain dots match too (``best.tpr_at_fpr.0.01``)."""
    value = _resolve(document, path)
    return None if value is _MISSING else value


def unresolved_metrics(rules: Iterable[Rule], result: Any, *, command: str) -> list[str]:
    """Warnings for rules of ``command`` whose metric path does not exist in the result: such a
    rule can never fire, which is almost always a typo in a user's rule file."""
    document = to_jsonable(result)
    return [
        f"rule {rule.id} ({rule.source.split(': rule ')[0]}): metric '{rule.metric}' is not in "
        f"the {command} result, so the rule never fires"
        for rule in rules
        if rule.applies_to(command) and _resolve(document, rule.metric) is _MISSING
    ]


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def render_message(template: str, document: Any, **placeholders: str) -> str:
    """A rule's message: ``{value}``, ``{threshold}``, ``{target}``, ``{metric}``, and any
    ``{dotted.path}`` read from the result (``-`` when the result has no value there). Plain
    substitution: a checked template holds no format specs or conversions."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name in placeholders:
            out.append(placeholders[name])
        else:
            found = lookup(document, name)
            out.append("-" if found is None else _shown(found))
    return "".join(out)


def evaluate(
    rules: Iterable[Rule], result: Any, *, command: str, target: str
) -> tuple[Finding, ...]:
    """Findings for the rules of ``command`` whose comparison holds on ``result``, most severe
    first. A metric that is absent or null (not measurable on this data) fires nothing."""
    document = to_jsonable(result)
    findings = []
    for rule in rules:
        if not rule.applies_to(command):
            continue
        value = lookup(document, rule.metric)
        if value is None:
            continue
        numeric_rule = isinstance(rule.threshold, (int, float)) and not isinstance(
            rule.threshold, bool
        )
        if numeric_rule and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RuleError(
                f"{rule.source}: field 'metric': {rule.metric} is {value!r}, not a number "
                f"to compare with {rule.threshold!r}"
            )
        try:
            fired = OPERATORS[rule.op](value, rule.threshold)
        except TypeError:
            raise RuleError(
                f"{rule.source}: field 'metric': cannot compare {rule.metric}={value!r} "
                f"with {rule.threshold!r}"
            ) from None
        if not fired:
            continue
        message = render_message(
            rule.message,
            document,
            value=_shown(value),
            threshold=f"{rule.threshold:g}"
            if isinstance(rule.threshold, float)
            else _shown(rule.threshold),
            target=target,
            metric=rule.metric,
        )
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
                op=rule.op,
                help_uri=rule.help_uri,
                confidence=rule.confidence,
                description=rule.description,
                tags=rule.tags,
                command=command,
            )
        )
    findings.sort(key=lambda f: (-f.severity.rank, f.rule_id))
    return tuple(findings)
