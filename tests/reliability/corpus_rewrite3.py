"""Round two of the hostile-input corpus: functions that would make the rewriter work without
bound (issue 16).

Braces, ``if`` statements, parentheses and indentation nested far deeper than any real function,
through every command that rewrites code: the label-only boundary attack of ``membership``,
rewrite averaging and the boundary attack of ``harden``, and trigger insertion of ``poison``.
Such a function is over the rewriter's per-function budget
(:data:`codeaudit.lang.tree.MAX_REWRITE_DEPTH`, :data:`~codeaudit.lang.tree.MAX_REWRITE_NODES`):
it is skipped, counted, and the report's warnings say how many and why; never exit 3. A long
but flat function stays within the budget and is rewritten as before. Registered at the end of
:mod:`tests.reliability.corpus`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.reliability.corpus import OK, Case, Expect, _lines, _write, error
from tests.reliability.harness import World

SKIPPED = r"{n} functions skipped by the rewriter \({what}[^)]*\): over its per-function budget"


def _deep_braces_c(depth: int) -> tuple[str, str]:
    return "int f(){" + "{" * depth + "}" * depth + "}", "c"


def _deep_if(lang: str, depth: int) -> tuple[str, str]:
    body = "if(a){" * depth + "a++;" + "}" * depth
    if lang == "java":
        return "class A { int f(int a){" + body + "return a; } }", "java"
    return "int f(int a){" + body + "return a; }", lang


def _deep_parens_python(depth: int) -> tuple[str, str]:
    return "def f(a):\n    return " + "(" * depth + "a" + ")" * depth + "\n", "python"


def _deep_indent_python(depth: int) -> tuple[str, str]:
    lines = "".join(" " * (i + 1) + "if a:\n" for i in range(depth))
    return "def f(a):\n" + lines + " " * (depth + 1) + "a += 1\n", "python"


def _long_flat_c(statements: int) -> tuple[str, str]:
    body = "".join(f"  if (a < {i}) {{ a = a + {i}; }}\n" for i in range(statements))
    return "int f(int a) {\n" + body + "  return a;\n}\n", "c"


def _with(make: Callable[[], tuple[str, str]], count: int = 2) -> Callable[[Path, World], str]:
    """Twelve valid records, the first ``count`` with the given function (both labels)."""

    def build(d: Path, w: World) -> str:
        records = w.records(12)
        code, lang = make()
        for record in records[:count]:
            record.update(func=code, lang=lang)
        return _write(d / "deep.jsonl", _lines(records))

    return build


def _victims(make: Callable[[], tuple[str, str]]) -> Callable[[Path, World], str]:
    """Twelve records, two of the six victim-label (1) ones with the given function."""

    def build(d: Path, w: World) -> str:
        records = w.records(12)
        code, lang = make()
        for record in [r for r in records if r["target"] == 1][:2]:
            record.update(func=code, lang=lang)
        return _write(d / "deep.jsonl", _lines(records))

    return build


def _no_skip(report: dict) -> None:
    assert not any("skipped by the rewriter" in w for w in report.get("warnings", ())), report


DEEP: list[tuple[str, Callable[[], tuple[str, str]], bool]] = [
    ("braces-10k-c", lambda: _deep_braces_c(10_000), False),
    ("braces-100k-c", lambda: _deep_braces_c(100_000), True),
    ("if-5k-cpp", lambda: _deep_if("cpp", 5_000), False),
    ("if-5k-java", lambda: _deep_if("java", 5_000), False),
    ("parens-20k-python", lambda: _deep_parens_python(20_000), False),
    ("indent-600-python", lambda: _deep_indent_python(600), False),
]

CASES: list[Case] = []
for name, make, slow in DEEP:
    CASES += [
        Case(
            f"rewrite-budget-{name}-membership-boundary",
            _with(make),
            Expect(OK, warning=SKIPPED.format(what="label-only boundary attack", n=2)),
            commands=("membership",),
            extra=("--boundary-samples", "100"),
            slow=slow,
        ),
        Case(
            f"rewrite-budget-{name}-harden",
            _with(make),
            Expect(OK, warning=SKIPPED.format(what="rewrite averaging and the label-only", n=2)),
            commands=("harden",),
            extra=("--rewrites", "2", "--boundary-samples", "100"),
            slow=slow,
        ),
        Case(
            f"rewrite-budget-{name}-poison",
            _victims(make),
            error(r"only 4 of 6 victim-label .*; 2 of them were over the rewriter's per-function"),
            commands=("poison",),
            extra=("--rate", "1"),
            slow=slow,
        ),
    ]
CASES += [
    Case(
        "rewrite-budget-long-flat-c-not-skipped",
        _with(lambda: _long_flat_c(1_500)),
        Expect(OK, report=_no_skip),
        commands=("membership", "harden"),
        extra=("--boundary-samples", "100"),
        slow=True,
    ),
]
