"""Semantics-preserving rewrites of one function, driven by the tree-sitter syntax tree.

Two tools need to change a function without changing what it does: the label-only membership
attack applies random rewrites and counts how many it takes to flip a model's label, and the
poisoning tool renames a variable to a fixed trigger token. The rewrites offered here:

``rename-variable``
    A parameter or local variable renamed everywhere in the function (only names whose every
    occurrence provably refers to a local of the function, see :func:`renamable_variables`).
``swap-comparison``
    ``a < b`` becomes ``b > a`` (also ``<=``/``>=``, ``==``, ``!=``), only when both operands
    are free of side effects (names, literals, field accesses, subscripts of those).
``empty-statement``
    An empty statement inserted between two statements of a block: ``;`` in C, C++ and Java, a
    ``pass`` line at the same indentation in Python.
``redundant-parens``
    A side-effect-free operand wrapped in parentheses: ``return x;`` becomes ``return (x);``.

Every rewrite is checked before it is returned: the new text is parsed again and its syntax tree
must be exactly the old tree with the intended change (same node types in the same order, the
renamed leaves aside; one more parenthesised expression; two operands swapped; one more empty
statement). So a rewrite never introduces a parse error, also on code that already had some (those
parts are left alone), and a site where tree-sitter would read the result differently (a C cast
ambiguity, a C++ template) is skipped. All randomness comes from the caller's
:class:`random.Random`, so a seed gives the same rewrites every time.

Work per function is bounded: every pass over the tree is iterative and linear in its size, and a
function whose syntax tree is deeper than :data:`MAX_REWRITE_DEPTH` levels or has more than
:data:`MAX_REWRITE_NODES` nodes is not rewritten at all: every public function here raises
:class:`RewriteBudgetError` (a ValueError) for it. The commands that rewrite catch it, count the
function as skipped and say so in their result's warnings (:func:`skipped_warning`).

This module holds the language-neutral algorithms. What differs between languages (which
expressions are free of side effects, where a rewrite may act, what an empty statement looks
like, which names are locals of the function) is asked of the language's
:class:`~codeaudit.lang.support.LanguageSupport`.
"""

from __future__ import annotations

import functools
import random
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from codeaudit.lang.languages import language_support, normalize_language
from codeaudit.lang.lexer import CodeToken, IdentRole, TokenKind, lex
from codeaudit.lang.support import LanguageSupport
from codeaudit.lang.tree import (
    MAX_REWRITE_DEPTH,
    MAX_REWRITE_NODES,
    Edit,
    RewriteBudgetError,
    Signature,
    Source,
    entry,
    signature,
    verified,
    walk,
)

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "FRESH_NAMES",
    "MAX_REWRITE_DEPTH",
    "MAX_REWRITE_NODES",
    "RewriteBudgetError",
    "RewriteKind",
    "apply_rewrite",
    "fresh_names",
    "over_budget",
    "random_rewrites",
    "renamable_variables",
    "rename_variable",
    "skipped_warning",
    "supported_kinds",
]


class RewriteKind(str, Enum):
    """The kinds of semantics-preserving rewrite."""

    RENAME_VARIABLE = "rename-variable"
    SWAP_COMPARISON = "swap-comparison"
    EMPTY_STATEMENT = "empty-statement"
    REDUNDANT_PARENS = "redundant-parens"


#: Plausible identifiers for renamed variables, tried in this order of preference.
FRESH_NAMES: tuple[str, ...] = (
    "tmp", "val", "idx", "ptr", "count", "buf2", "len2", "res", "item", "cur", "num", "pos",
    "elem", "obj", "value", "result", "total", "offset", "flag", "state", "entry", "temp", "aux",
    "acc", "data2", "node2", "size2", "key2", "src2", "dst2", "out2", "arg2", "ret2", "tmp2",
    "val2", "idx2", "cnt", "ctr", "limit", "width",
)  # fmt: skip


_SWAPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


# --------------------------------------------------------------------------------------------
# swap-comparison
# --------------------------------------------------------------------------------------------


def _swap_edits(src: Source) -> list[Edit]:
    support = src.support
    guard = support.comparison_guard(src)
    edits = []
    for node in walk(src.root):
        if node.type != support.comparison_type or node.child_count != 3:
            continue
        left, operator, right = node.children
        if operator.is_named or operator.type not in _SWAPPED:
            continue
        if not (support.pure(left) and support.pure(right) and support.site_allowed(node, src)):
            continue
        if not guard(left, right):
            continue
        new_op = _SWAPPED[operator.type]
        text = (
            src.text(right)
            + src.code[src.end(left) : src.start(operator)]
            + new_op
            + src.code[src.end(operator) : src.start(right)]
            + src.text(left)
        )

        def transform(target: tree_sitter.Node, new_op: str = new_op) -> Signature:
            first, _, second = target.children
            return [
                entry(target),
                *signature(second),
                (new_op, False, False),
                *signature(first),
            ]

        edits.append(
            Edit(((src.start(node), src.end(node), text),), target=node, transform=transform)
        )
    return edits


# --------------------------------------------------------------------------------------------
# redundant-parens
# --------------------------------------------------------------------------------------------


def _wrap(target: tree_sitter.Node) -> Signature:
    return [
        ("parenthesized_expression", True, False),
        ("(", False, False),
        *signature(target),
        (")", False, False),
    ]


def _parens_edits(src: Source) -> list[Edit]:
    support = src.support
    edits = []
    for node in walk(src.root):
        if not node.is_named or node.type == "parenthesized_expression":
            continue
        if not (support.pure(node) and support.parens_position_ok(node, src)):
            continue
        if not support.site_allowed(node, src):
            continue
        start, end = src.start(node), src.end(node)
        edits.append(Edit(((start, start, "("), (end, end, ")")), target=node, transform=_wrap))
    return edits


# --------------------------------------------------------------------------------------------
# empty-statement
# --------------------------------------------------------------------------------------------


def _empty_edits(src: Source) -> list[Edit]:
    empty = src.support.empty_statement_signature

    def prepend(target: tree_sitter.Node) -> Signature:
        return [*empty, *signature(target)]

    return [
        Edit(((position, position, text),), target=statement, transform=prepend)
        for position, text, statement in src.support.empty_statement_sites(src)
    ]


# --------------------------------------------------------------------------------------------
# Which names are local variables of the function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    src: Source
    tokens: tuple[CodeToken, ...]
    used: frozenset[str]
    renamable: dict[str, tuple[CodeToken, ...]]


# Callers rewrite one function several times in a row (harden: 8 independent one-step rewrites
# of each function; each a fresh call): its parse and analysis are kept for the last few
# functions instead of being rebuilt per rewrite. Both are read-only once built (a Source only
# adds to its own memo tables), so a kept one gives exactly the rewrite a fresh one would.
_KEPT = 4


@functools.lru_cache(maxsize=_KEPT)
def _source(code: str, lang: str) -> Source:
    return Source(code, language_support(lang))


@functools.lru_cache(maxsize=_KEPT)
def _analysis(code: str, lang: str) -> _Analysis:
    return _analyse(code, language_support(lang))


_FINDERS = {
    RewriteKind.SWAP_COMPARISON: _swap_edits,
    RewriteKind.EMPTY_STATEMENT: _empty_edits,
    RewriteKind.REDUNDANT_PARENS: _parens_edits,
}
# The candidate edits of a kept source, by kind: a function rewritten 8 times draws each kind
# about 3 times, and the candidates depend on the tree alone (the same list, in the same order).
_SITES: weakref.WeakKeyDictionary[Source, dict[RewriteKind, tuple[Edit, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _sites(src: Source, kind: RewriteKind) -> tuple[Edit, ...]:
    """``_FINDERS[kind](src)``, found once per source and kind."""
    found = _SITES.setdefault(src, {})
    if kind not in found:
        found[kind] = tuple(_FINDERS[kind](src))
    return found[kind]


def _analyse(code: str, support: LanguageSupport) -> _Analysis:
    src = _source(code, support.name)
    shift = len(src.prefix)
    tokens = tuple(
        replace(t, start=t.start - shift, end=t.end - shift) if shift else t
        for t in lex(src.full, support.name).tokens
        if t.start >= shift
    )
    identifier_nodes: dict[tuple[int, int], tree_sitter.Node] = {}
    used: set[str] = {t.text for t in tokens}
    hidden: set[str] = set()  # names the lexer cannot see (inside f-strings)
    hiding = support.hidden_name_contexts
    for node in walk(src.root):
        if node.type.endswith("identifier") and node.child_count == 0:
            text = src.text(node)
            used.add(text)
            if node.type == "identifier":
                identifier_nodes[(src.start(node), src.end(node))] = node
                if hiding and src.under(node, hiding):
                    hidden.add(text)

    by_text: dict[str, list[CodeToken]] = {}
    for token in tokens:
        by_text.setdefault(token.text, []).append(token)
    reserved = support.rename_reserved()
    occurrences: dict[str, list[tree_sitter.Node]] = {}
    for text, group in by_text.items():
        if text in reserved or text in hidden:
            continue
        nodes = []
        for token in group:
            node = identifier_nodes.get((token.start, token.end))
            if (
                node is None
                or token.kind is not TokenKind.IDENTIFIER
                or token.node_type != "identifier"
                or token.role is not IdentRole.VARIABLE
                or token.in_error
            ):
                break
            nodes.append(node)
        else:
            occurrences[text] = nodes

    calls = frozenset(t.text for t in tokens if t.role is IdentRole.FUNCTION)
    names = support.renamable(src, occurrences, calls)
    renamable = {name: tuple(by_text[name]) for name in sorted(names)}
    return _Analysis(src, tokens, frozenset(used), renamable)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def over_budget(code: str, lang: str) -> str | None:
    """Why the rewriter skips this function (over its per-function budget), or None."""
    try:
        Source(code, language_support(lang))
    except RewriteBudgetError as exc:
        return exc.reason
    return None


def skipped_warning(skipped: Mapping[str, int], what: str, effect: str) -> str | None:
    """The warning a command reports for the functions its rewriter skipped (``skipped``: how
    many per reason), or None when none was: ``what`` names the step, ``effect`` says what the
    skip means for the result."""
    total = sum(skipped.values())
    if not total:
        return None
    reasons = ", ".join(f"{count} with a {reason}" for reason, count in sorted(skipped.items()))
    noun = "function" if total == 1 else "functions"
    return (
        f"{total} {noun} skipped by the rewriter ({what}): over its per-function budget "
        f"({reasons}); {effect}"
    )


def supported_kinds(lang: str) -> tuple[RewriteKind, ...]:
    """The rewrite kinds offered for a language (all four, for every supported language)."""
    normalize_language(lang)
    return tuple(RewriteKind)


def renamable_variables(code: str, lang: str) -> list[str]:
    """Names declared inside the function (parameters and local declarations) whose every
    occurrence is a plain variable use: never names a function, type, field, macro or label, is not
    a reserved word, and is not shadowed ambiguously. Sorted, deterministic.

    "Not shadowed ambiguously" means every occurrence lies in the scope of a local declaration of
    the name (C, C++, Java), or resolves to a binding of the function or of a function nested in it
    (Python), so renaming all of them together keeps every reference pointing where it did.
    Occurrences inside parse errors, preprocessor directives, macro arguments that may name
    members (``offsetof``, ``container_of``, ...) or Python f-strings exclude a name, as does an
    ALL_CAPS spelling in C/C++ and ``self`` in Python.
    """
    return list(_analyse(code, language_support(lang)).renamable)


def rename_variable(code: str, lang: str, old: str, new: str) -> str:
    """Replace every occurrence of the variable `old` with `new` using the lexer's token spans
    (so strings, comments and substrings of other names are untouched). ValueError (one line) if
    `old` is not renamable, `new` is not a valid identifier in the language, is reserved, or
    already occurs in the function.
    """
    support = language_support(lang)
    problem = support.new_name_problem(new)
    if problem is not None:
        raise ValueError(f"cannot rename to {new!r}: it {problem}")
    analysis = _analyse(code, support)
    if old not in analysis.renamable:
        raise ValueError(
            f"{old!r} is not a renamable local variable of this {support.name} function"
        )
    if new in analysis.used:
        raise ValueError(f"cannot rename to {new!r}: the name already occurs in the function")
    result = _rename(analysis, old, new)
    if result is None:
        raise ValueError(f"renaming {old!r} to {new!r} would change how the code parses")
    return result


def _rename(analysis: _Analysis, old: str, new: str) -> str | None:
    replacements = tuple((t.start, t.end, new) for t in analysis.renamable[old])
    return verified(analysis.src, Edit(replacements))


def fresh_names(code: str, lang: str, count: int = 1) -> list[str]:
    """The first ``count`` names of :data:`FRESH_NAMES` (then ``v1``, ``v2``, ...) that are valid
    in the language and do not occur in the function."""
    support = language_support(lang)
    return _fresh(_analyse(code, support).used, support, count)


def _fresh(used: frozenset[str], support: LanguageSupport, count: int) -> list[str]:
    names = [n for n in FRESH_NAMES if n not in used and support.new_name_problem(n) is None]
    k = 1
    while len(names) < count:
        candidate = f"v{k}"
        if candidate not in used:
            names.append(candidate)
        k += 1
    return names[: max(count, 0)]


def apply_rewrite(code: str, lang: str, kind: RewriteKind, rng: random.Random) -> str | None:
    """One random rewrite of this kind, or None when the function offers no site for it.

    Sites are tried in an order drawn from ``rng``; the first whose result parses exactly as
    intended is returned.
    """
    support = language_support(lang)
    kind = RewriteKind(kind)
    if kind is RewriteKind.RENAME_VARIABLE:
        analysis = _analysis(code, support.name)
        names = list(analysis.renamable)
        rng.shuffle(names)
        pool = _fresh(analysis.used, support, len(FRESH_NAMES))
        for old in names:
            result = _rename(analysis, old, rng.choice(pool))
            if result is not None:
                return result
        return None
    src = _source(code, support.name)
    edits = list(_sites(src, kind))  # a copy: the order is drawn below
    rng.shuffle(edits)
    for edit in edits:
        result = verified(src, edit)
        if result is not None:
            return result
    return None


def random_rewrites(
    code: str,
    lang: str,
    n: int,
    rng: random.Random,
    kinds: Sequence[RewriteKind] | None = None,
) -> list[str]:
    """A chain of n successive random rewrites (each applied to the previous result); returns the
    n intermediate versions (fewer if no site is left). Fresh names come from a deterministic pool
    of plausible identifiers (:data:`FRESH_NAMES`, then ``v1``, ``v2``, ...) that do not already
    occur in the function.

    Each step draws a kind from ``kinds`` (default: all kinds offered for the language); when the
    function has no site for it, the other kinds are tried in a random order.
    """
    lang = normalize_language(lang)
    offered = list(supported_kinds(lang) if kinds is None else (RewriteKind(k) for k in kinds))
    versions: list[str] = []
    current = code
    for _ in range(max(n, 0)):
        order = offered[:]
        rng.shuffle(order)
        for kind in order:
            result = apply_rewrite(current, lang, kind, rng)
            if result is not None:
                break
        else:
            break
        versions.append(result)
        current = result
    return versions
