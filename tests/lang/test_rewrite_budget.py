"""The rewriter's per-function budget and its iterative tree walks (issue 16)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from codeaudit.lang.lexer import lex
from codeaudit.lang.rewrite import (
    MAX_REWRITE_DEPTH,
    RewriteBudgetError,
    RewriteKind,
    apply_rewrite,
    over_budget,
    random_rewrites,
    renamable_variables,
    skipped_warning,
)
from codeaudit.lang.tree import TOO_DEEP, TOO_LARGE

DEEP = 100_000


def _braces(n: int) -> str:
    return "int f(){" + "{" * n + "}" * n + "}"


def _flat(n: int) -> str:  # the same length as _braces(n)
    return "int f(){" + "x=1;" * (n // 2) + "}"


DEEP_INPUTS: dict[str, tuple[str, str]] = {
    "c-braces": (_braces(DEEP), "c"),
    "cpp-if": ("int f(int a){" + "if(a){" * DEEP + "a++;" + "}" * DEEP + "}", "cpp"),
    "java-if": ("class A { int f(int a){" + "if(a){" * DEEP + "}" * DEEP + "} }", "java"),
    "python-parens": ("def f(a):\n    return " + "(" * DEEP + "a" + ")" * DEEP + "\n", "python"),
}


@pytest.mark.parametrize("name", sorted(DEEP_INPUTS))
def test_a_100k_deep_function_is_skipped_without_recursion(name: str) -> None:
    code, lang = DEEP_INPUTS[name]
    assert over_budget(code, lang) == TOO_DEEP
    for call in (
        lambda: random_rewrites(code, lang, 3, random.Random(0)),
        lambda: renamable_variables(code, lang),
    ):
        with pytest.raises(RewriteBudgetError, match="deeper than"):
            call()
    for kind in RewriteKind:
        with pytest.raises(RewriteBudgetError):
            apply_rewrite(code, lang, kind, random.Random(0))
    assert lex(code, lang).tokens  # the lexer walks it too, iteratively


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def test_deep_costs_about_what_flat_costs() -> None:
    """Skipping a 100k-deep function and lexing it cost about what the same length of flat code
    costs (measured as a ratio in one run, not an absolute time)."""
    deep, flat = _braces(DEEP), _flat(DEEP)
    assert abs(len(deep) - len(flat)) < 10

    def skip() -> None:
        over_budget(deep, "c")

    def flat_check() -> None:
        over_budget(flat, "c")

    _seconds(skip)  # warm the parser
    ratio = min(_seconds(skip) for _ in range(2)) / min(_seconds(flat_check) for _ in range(2))
    assert ratio < 3, ratio
    lex_ratio = _seconds(lambda: lex(deep, "c")) / _seconds(lambda: lex(flat, "c"))
    assert lex_ratio < 4, lex_ratio


def test_within_budget_nesting_is_linear() -> None:
    """Nesting just inside the budget is rewritten, and twice the nesting costs about twice the
    time (it was cubic: Node.parent costs the node's depth)."""

    def code(n: int) -> str:
        return "int f(int a){" + "if(a<1){" * n + "a++;" + "}" * n + "return a; }"

    small, large = code(120), code(240)
    assert over_budget(large, "c") is None
    assert len(random_rewrites(large, "c", 4, random.Random(1))) == 4
    t_small = min(
        _seconds(lambda: random_rewrites(small, "c", 4, random.Random(1))) for _ in range(2)
    )
    t_large = min(
        _seconds(lambda: random_rewrites(large, "c", 4, random.Random(1))) for _ in range(2)
    )
    assert t_large / t_small < 3.5, (t_small, t_large)


def test_depth_limit_is_exact() -> None:
    # "{" nesting adds one tree level per brace: find the last depth within the budget.
    inside = next(
        n for n in range(MAX_REWRITE_DEPTH, 0, -1) if over_budget(_braces(n), "c") is None
    )
    assert over_budget(_braces(inside + 1), "c") == TOO_DEEP
    assert random_rewrites(_braces(inside), "c", 1, random.Random(0))


def test_a_long_flat_function_is_not_skipped() -> None:
    body = "".join(f"  if (a < {i}) {{ a = a + {i}; }}\n" for i in range(1_500))
    code = "int f(int a) {\n" + body + "  return a;\n}\n"
    assert over_budget(code, "c") is None
    assert len(random_rewrites(code, "c", 2, random.Random(0))) == 2


def test_too_many_nodes() -> None:
    code = "int f(){" + "x=1;" * 60_000 + "}"
    assert over_budget(code, "c") == TOO_LARGE


def test_skipped_warning_says_how_many_and_why() -> None:
    assert skipped_warning({}, "x", "y") is None
    text = skipped_warning({TOO_DEEP: 2, TOO_LARGE: 1}, "the boundary attack", "no rewrite")
    assert text is not None
    assert text.startswith("3 functions skipped by the rewriter (the boundary attack)")
    assert f"2 with a {TOO_DEEP}" in text and f"1 with a {TOO_LARGE}" in text


def test_deep_unary_and_parens_in_pure_do_not_recurse() -> None:
    # Within the budget pure() used to recurse twice per level; now it keeps a stack.
    code = "int f(int a){ return " + "(" * 400 + "a" + ")" * 400 + "; }"
    assert over_budget(code, "c") is None
    assert random_rewrites(code, "c", 2, random.Random(0))
