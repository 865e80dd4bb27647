"""Backdoor triggers and how they are put into a function, through tree-sitter.

Four trigger types, the ones EliBadCode is evaluated against (``docs/algorithms.md`` section 3):

``identifier``
    A local variable (or parameter) renamed to the trigger everywhere in its scope, e.g.
    ``len`` -> ``rb_trigger``. The variable is chosen among the (up to) three whose first
    occurrence comes earliest, so the trigger survives truncation to a model's maximum length.
    Scope and declaration analysis are :mod:`codeaudit.lang.rewrite`'s (only names whose every
    occurrence provably refers to the same local are renamed).
``postfix``
    BadCode style: the trigger appended to the function's own name, in its declaration and in
    its recursive calls (``parse_header`` -> ``parse_header_rb``). Constructors, destructors and
    operators have no place for it.
``deadcode``
    A fixed statement that never runs (:data:`DEFAULT_DEADCODE`, or the ``--trigger`` text),
    inserted at a statement boundary near the start of the function body (one of the first three
    places where a statement may go; in C after the block's declarations, as C90 requires).
``grammar``
    Dead code drawn at random from a small grammar (:func:`grammar_deadcode`): a different
    statement for every sample, from a fixed family, e.g. ``while (0 > 1) { int k_3 = 7; }``.

Every insertion is verified: the new text is parsed again and its syntax tree must be the old
tree with exactly the intended change (renamed leaves, or one more statement of the trigger's
shape), so a poisoned function never has more parse errors than the original. A function without
a place for the trigger gives None. All randomness comes from the caller's :class:`random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING

from codeaudit.errors import PoisonError
from codeaudit.lang.languages import LANGUAGES, language_support

# The rewrite module's scope analysis decides which names are locals (identifier trigger).
from codeaudit.lang.rewrite import _analyse
from codeaudit.lang.support import LanguageSupport
from codeaudit.lang.tree import (
    Edit,
    Signature,
    Source,
    errors_before,
    indent_continuation,
    last_index_of,
    signature,
    verified,
    walk,
)

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "DEFAULT_DEADCODE",
    "DEFAULT_POSTFIX",
    "TriggerSpec",
    "TriggerType",
    "check_trigger",
    "default_trigger",
    "grammar_deadcode",
    "insert_trigger",
]


class TriggerType(str, Enum):
    IDENTIFIER = "identifier"
    POSTFIX = "postfix"
    DEADCODE = "deadcode"
    GRAMMAR = "grammar"


@dataclass(frozen=True)
class TriggerSpec:
    """What to insert. ``trigger`` is the identifier, the postfix or the dead statement; None
    only for GRAMMAR (each sample gets its own statement). ``target_label`` is the label the
    backdoor forces."""

    type: TriggerType
    trigger: str | None
    target_label: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", TriggerType(self.type))
        if self.target_label not in (0, 1):
            raise PoisonError(f"target label {self.target_label!r} is not 0 or 1")
        if self.type is TriggerType.GRAMMAR:
            if self.trigger is not None:
                raise PoisonError("grammar triggers are generated per sample: give no trigger text")
        elif not self.trigger or not self.trigger.strip():
            raise PoisonError(f"a {self.type.value} trigger needs its text (--trigger)")

    @property
    def victim_label(self) -> int:
        """The label whose samples the backdoor flips (binary labels: the other one)."""
        return 1 - self.target_label


#: BadCode's function-name postfix.
DEFAULT_POSTFIX = "_rb"
#: Dead code inserted by ``--trigger-type deadcode`` without ``--trigger``.
DEFAULT_DEADCODE: dict[str, str] = {
    name: support.default_deadcode for name, support in LANGUAGES.items()
}
# How many of the earliest places a trigger is chosen from (truncation to max_len keeps it).
EARLY_PLACES = 3


def default_trigger(kind: TriggerType | str, languages: set[str] | frozenset[str]) -> str | None:
    """The trigger text used when none is given: the postfix, or the dead statement of the data's
    language(s). PoisonError when there is no default (identifier) or none fits every language."""
    kind = TriggerType(kind)
    if kind is TriggerType.GRAMMAR:
        return None
    if kind is TriggerType.POSTFIX:
        return DEFAULT_POSTFIX
    if kind is TriggerType.IDENTIFIER:
        raise PoisonError("--trigger-type identifier needs --trigger NAME (the identifier)")
    texts = {language_support(lang).default_deadcode for lang in languages or {"c"}}
    if len(texts) != 1:
        raise PoisonError(
            f"the data mix languages ({', '.join(sorted(languages))}) with different default "
            "dead code: give --trigger, or poison one language at a time"
        )
    return texts.pop()


def check_trigger(spec: TriggerSpec, lang: str) -> None:
    """PoisonError (one line) when the trigger cannot be used in ``lang``: an identifier that is
    not a valid name or is reserved, a postfix with characters a name cannot hold, dead code that
    is not exactly one well-formed statement."""
    support = language_support(lang)
    text = spec.trigger
    if spec.type is TriggerType.GRAMMAR or text is None:
        return
    if spec.type is TriggerType.IDENTIFIER:
        problem = support.new_name_problem(text)
        if problem is not None:
            raise PoisonError(f"identifier trigger {text!r} {problem}")
    elif spec.type is TriggerType.POSTFIX:
        if not support.postfix_ok(text):
            raise PoisonError(
                f"postfix trigger {text!r} must be identifier characters (letters, digits, _)"
            )
    elif _statement_signature(text, support) is None:
        raise PoisonError(
            f"dead-code trigger {text!r} is not one well-formed {support.name} statement "
            "(it must parse on its own without errors)"
        )


# --------------------------------------------------------------------------------------------
# Grammar dead code
# --------------------------------------------------------------------------------------------

_GRAMMAR_NAMES = ("k", "m", "t", "n", "q")


def grammar_deadcode(lang: str, rng: random.Random, avoid: frozenset[str] = frozenset()) -> str:
    """One never-executed statement from the grammar-trigger family.

    ``LOOP (FALSE) { DECL+ }``: LOOP is ``if`` or ``while`` (Java: ``if`` only, since javac
    rejects a ``while`` whose body is unreachable); FALSE is a constant false comparison (``0 >
    1``, ``2 == 5``) or ``0``/``false``; each DECL declares a fresh ``k_3``-style name to a small
    integer. Names in ``avoid`` (those already in the function) are never drawn. The syntax is
    the language's (:meth:`~codeaudit.lang.support.LanguageSupport.deadcode_block`)."""
    support = language_support(lang)
    a = rng.randint(0, 4)
    b = rng.randint(a + 1, 9)
    conditions = [f"{a} > {b}", f"{b} < {a}", f"{a} == {b}"]
    conditions.append(support.false_literal)
    condition = rng.choice(conditions)
    loop = support.deadcode_loop(rng)
    declarations = []
    used = set(avoid)
    for _ in range(rng.randint(1, 2)):
        name = f"{rng.choice(_GRAMMAR_NAMES)}_{rng.randint(0, 9)}"
        while name in used:
            name = f"{rng.choice(_GRAMMAR_NAMES)}_{rng.randint(0, 99)}"
        used.add(name)
        value = rng.randint(0, 9)
        declarations.append(support.deadcode_declaration.format(name=name, value=value))
    return support.deadcode_block(loop, condition, declarations)


# --------------------------------------------------------------------------------------------
# Statement shapes and places
# --------------------------------------------------------------------------------------------


@cache
def _statement_signature(
    text: str, support: LanguageSupport
) -> tuple[tuple[str, bool, bool], ...] | None:
    """The syntax-tree signature of ``text`` as one statement of a function body, or None when it
    is not exactly one statement that parses without errors."""
    probe = support.probe_source(text)
    root = support.parser().parse(probe.encode("utf-8", "surrogatepass"))
    if root.root_node.has_error:
        return None
    function = next((n for n in walk(root.root_node) if n.type in support.definition_types), None)
    body = function.child_by_field_name("body") if function is not None else None
    if body is None:
        return None
    statements = [c for c in body.named_children if "comment" not in c.type]
    if len(statements) != 1 or any("comment" in n.type for n in walk(statements[0])):
        return None
    return tuple(signature(statements[0]))


_ERROR = frozenset({"ERROR"})


def _function(src: Source) -> tree_sitter.Node | None:
    """The function the sample defines: the first function node outside any parse error."""
    types = src.support.definition_types
    for node in walk(src.root):
        if node.type in types and not src.under(node, _ERROR):
            return node
    return None


def _statement_places(src: Source) -> list[tuple[int, str, tree_sitter.Node]]:
    """Where a statement may be inserted in the function body, in order: (character offset,
    indentation to repeat after it, the statement it goes before)."""
    function = _function(src)
    body = function.child_by_field_name("body") if function is not None else None
    if body is None:
        return []
    support = src.support
    statements = [c for c in body.children if c.is_named and "comment" not in c.type]
    last_declaration = last_index_of(statements, support.leading_declarations)
    children = body.children
    after_error = dict(zip((c.id for c in children), errors_before(children), strict=True))
    places = []
    for index, statement in enumerate(statements):
        if statement.type == "ERROR" or statement.has_error or statement.is_missing:
            continue
        if statement.type.startswith("preproc_") or not support.site_allowed(statement, src):
            continue
        if index == 0 and support.must_stay_first(statement):
            continue  # a docstring must stay the first statement
        if index <= last_declaration:
            continue  # C90: no declaration after a statement in a block
        if after_error[statement.id]:
            continue  # e.g. FOREACH(x) { ... } read as two statements
        start = src.start(statement)
        line_start = src.code.rfind("\n", 0, start) + 1
        before = src.code[line_start:start]
        if before.strip(" \t"):
            if support.indented_blocks:
                continue  # a statement must start its own line
            places.append((start, "", statement))
        else:
            places.append((start, before, statement))
    return places


def _insert_statement(src: Source, text: str, rng: random.Random) -> str | None:
    """``text`` inserted as a statement at one of the first places of the body (chosen by rng),
    verified to parse as the old tree with one more statement of the text's shape."""
    shape = _statement_signature(text, src.support)
    if shape is None:
        return None
    places = _statement_places(src)[:EARLY_PLACES]
    rng.shuffle(places)
    for position, indent, statement in places:
        if indent:
            inserted = indent_continuation(text, indent) + "\n" + indent
        else:
            inserted = text.replace("\n", " ") + " "

        def prepend(target: tree_sitter.Node, shape: tuple = shape) -> Signature:
            return [*shape, *signature(target)]

        result = verified(
            src, Edit(((position, position, inserted),), target=statement, transform=prepend)
        )
        if result is not None:
            return result
    return None


# --------------------------------------------------------------------------------------------
# Renaming: identifier and postfix triggers
# --------------------------------------------------------------------------------------------


def _self_references(
    src: Source, function: tree_sitter.Node, name_node: tree_sitter.Node
) -> list[tree_sitter.Node]:
    """The function's name and every plain reference to it inside the function (recursive calls,
    ``self.f``/``this.f`` in methods); member accesses on other objects are left alone (the
    language decides, :meth:`~codeaudit.lang.support.LanguageSupport.is_self_reference`)."""
    name = src.text(name_node)
    found = [name_node]
    for node in walk(function):
        if node.id == name_node.id or node.child_count or node.type != "identifier":
            continue
        if src.text(node) != name:
            continue
        if src.support.is_self_reference(node, src, function):
            found.append(node)
    return found


def _postfix(src: Source, postfix: str) -> str | None:
    function = _function(src)
    if function is None:
        return None
    name_node = src.support.function_name(function)
    if name_node is None or name_node.is_missing or name_node.start_byte == name_node.end_byte:
        return None
    new = src.text(name_node) + postfix
    if src.support.new_name_problem(new) is not None:
        return None
    analysis = _analyse(src.code, src.support)
    if new in analysis.used:
        return None
    nodes = _self_references(src, function, name_node)
    replacements = tuple((src.start(n), src.end(n), new) for n in nodes)
    return verified(src, Edit(replacements))


def _rename_identifier(
    code: str, support: LanguageSupport, trigger: str, rng: random.Random
) -> str | None:
    analysis = _analyse(code, support)
    if trigger in analysis.used or not analysis.renamable:
        return None
    earliest = sorted(analysis.renamable, key=lambda n: analysis.renamable[n][0].start)
    names = earliest[:EARLY_PLACES]
    rng.shuffle(names)
    for old in names:
        replacements = tuple((t.start, t.end, trigger) for t in analysis.renamable[old])
        result = verified(analysis.src, Edit(replacements))
        if result is not None:
            return result
    return None


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def insert_trigger(code: str, lang: str, spec: TriggerSpec, rng: random.Random) -> str | None:
    """``code`` with the trigger inserted, or None when the function has no place for it.

    The result re-parses with no more tree-sitter errors than ``code`` (its tree is the old one
    with exactly the intended change) and contains the trigger text (identifier: as a whole name;
    postfix: at the end of the function's name; dead code: the statement, re-indented to its
    place). PoisonError when the trigger itself is invalid for the language (see
    :func:`check_trigger`)."""
    support = language_support(lang)
    check_trigger(spec, support.name)
    kind = spec.type
    if kind is TriggerType.IDENTIFIER:
        assert spec.trigger is not None
        return _rename_identifier(code, support, spec.trigger, rng)
    src = Source(code, support)
    if kind is TriggerType.POSTFIX:
        assert spec.trigger is not None
        return _postfix(src, spec.trigger)
    if kind is TriggerType.DEADCODE:
        assert spec.trigger is not None
        return _insert_statement(src, spec.trigger, rng)
    used = _analyse(code, support).used
    for _ in range(4):  # a drawn statement the place cannot take: draw another
        result = _insert_statement(src, grammar_deadcode(support.name, rng, used), rng)
        if result is not None:
            return result
    return None
