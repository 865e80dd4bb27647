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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING

from codeaudit.errors import PoisonError
from codeaudit.lang.languages import get_parser, normalize_language

# The rewrite module's verified-edit machinery (parse, edit, check the new tree) is reused as is.
from codeaudit.lang.rewrite import (
    _analyse,
    _Edit,
    _follows_error,
    _Signature,
    _signature,
    _site_allowed,
    _Source,
    _valid_new_name,
    _verified,
    _walk,
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
    "c": "if (0) { int rb_dead = 0; }",
    "cpp": "if (0) { int rb_dead = 0; }",
    "java": "if (false) { int rb_dead = 0; }",
    "python": "if False:\n    rb_dead = 0",
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
    texts = {DEFAULT_DEADCODE[normalize_language(lang)] for lang in languages or {"c"}}
    if len(texts) != 1:
        raise PoisonError(
            f"the data mix languages ({', '.join(sorted(languages))}) with different default "
            "dead code: give --trigger, or poison one language at a time"
        )
    return texts.pop()


_FUNCTIONS = {
    "c": frozenset({"function_definition"}),
    "cpp": frozenset({"function_definition"}),
    "java": frozenset({"method_declaration", "constructor_declaration"}),
    "python": frozenset({"function_definition"}),
}
_POSTFIX_CHARS = {
    "c": re.compile(r"[A-Za-z0-9_]+"),
    "cpp": re.compile(r"[A-Za-z0-9_]+"),
    "java": re.compile(r"[A-Za-z0-9_$]+"),
    "python": re.compile(r"\w+"),
}


def check_trigger(spec: TriggerSpec, lang: str) -> None:
    """PoisonError (one line) when the trigger cannot be used in ``lang``: an identifier that is
    not a valid name or is reserved, a postfix with characters a name cannot hold, dead code that
    is not exactly one well-formed statement."""
    lang = normalize_language(lang)
    text = spec.trigger
    if spec.type is TriggerType.GRAMMAR or text is None:
        return
    if spec.type is TriggerType.IDENTIFIER:
        problem = _valid_new_name(text, lang)
        if problem is not None:
            raise PoisonError(f"identifier trigger {text!r} {problem}")
    elif spec.type is TriggerType.POSTFIX:
        if not _POSTFIX_CHARS[lang].fullmatch(text) or (
            lang == "python" and not ("f" + text).isidentifier()
        ):
            raise PoisonError(
                f"postfix trigger {text!r} must be identifier characters (letters, digits, _)"
            )
    elif _statement_signature(text, lang) is None:
        raise PoisonError(
            f"dead-code trigger {text!r} is not one well-formed {lang} statement "
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
    integer. Names in ``avoid`` (those already in the function) are never drawn."""
    lang = normalize_language(lang)
    a = rng.randint(0, 4)
    b = rng.randint(a + 1, 9)
    conditions = [f"{a} > {b}", f"{b} < {a}", f"{a} == {b}"]
    conditions.append("False" if lang == "python" else "false" if lang == "java" else "0")
    condition = rng.choice(conditions)
    loop = "if" if lang == "java" else rng.choice(("if", "while"))
    declarations = []
    used = set(avoid)
    for _ in range(rng.randint(1, 2)):
        name = f"{rng.choice(_GRAMMAR_NAMES)}_{rng.randint(0, 9)}"
        while name in used:
            name = f"{rng.choice(_GRAMMAR_NAMES)}_{rng.randint(0, 99)}"
        used.add(name)
        value = rng.randint(0, 9)
        declarations.append(f"{name} = {value}" if lang == "python" else f"int {name} = {value};")
    if lang == "python":
        return f"{loop} {condition}:\n" + "\n".join("    " + d for d in declarations)
    return f"{loop} ({condition}) {{ {' '.join(declarations)} }}"


# --------------------------------------------------------------------------------------------
# Statement shapes and places
# --------------------------------------------------------------------------------------------

_C_DECLARATIONS = frozenset({"declaration", "type_definition"})
_WRAPPERS = {
    "c": ("void codeaudit_probe(void) {\n", "\n}\n"),
    "cpp": ("void codeaudit_probe() {\n", "\n}\n"),
    "java": ("class CodeauditProbe { void probe() {\n", "\n} }\n"),
    "python": ("def codeaudit_probe():\n", "\n"),
}


@cache
def _statement_signature(text: str, lang: str) -> tuple[tuple[str, bool, bool], ...] | None:
    """The syntax-tree signature of ``text`` as one statement of a function body, or None when it
    is not exactly one statement that parses without errors."""
    head, tail = _WRAPPERS[lang]
    body_text = _indent(text, "    ") if lang == "python" else text
    if lang == "python":
        body_text = "    " + body_text
    root = get_parser(lang).parse((head + body_text + tail).encode("utf-8", "surrogatepass"))
    if root.root_node.has_error:
        return None
    function = next((n for n in _walk(root.root_node) if n.type in _FUNCTIONS[lang]), None)
    body = function.child_by_field_name("body") if function is not None else None
    if body is None:
        return None
    statements = [c for c in body.named_children if "comment" not in c.type]
    if len(statements) != 1 or any("comment" in n.type for n in _walk(statements[0])):
        return None
    return tuple(_signature(statements[0]))


def _indent(text: str, indent: str) -> str:
    """Every line after the first prefixed with ``indent`` (the first goes where the cursor is)."""
    lines = text.split("\n")
    return "\n".join([lines[0], *(indent + line if line else line for line in lines[1:])])


def _function(src: _Source) -> tree_sitter.Node | None:
    """The function the sample defines: the first function node outside any parse error."""
    types = _FUNCTIONS[src.lang]
    for node in _walk(src.root):
        if node.type in types and not any(a.type == "ERROR" for a in _ancestors_of(node)):
            return node
    return None


def _ancestors_of(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _is_docstring(node: tree_sitter.Node) -> bool:
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and node.named_children[0].type == "string"
    )


def _statement_places(src: _Source) -> list[tuple[int, str, tree_sitter.Node]]:
    """Where a statement may be inserted in the function body, in order: (character offset,
    indentation to repeat after it, the statement it goes before)."""
    function = _function(src)
    body = function.child_by_field_name("body") if function is not None else None
    if body is None:
        return []
    lang = src.lang
    statements = [c for c in body.children if c.is_named and "comment" not in c.type]
    places = []
    for index, statement in enumerate(statements):
        if statement.type == "ERROR" or statement.has_error or statement.is_missing:
            continue
        if statement.type.startswith("preproc_") or not _site_allowed(statement, src):
            continue
        if lang == "python" and index == 0 and _is_docstring(statement):
            continue  # a docstring must stay the first statement
        if lang == "c" and any(s.type in _C_DECLARATIONS for s in statements[index:]):
            continue  # C90: no declaration after a statement in a block
        if _follows_error([c for c in body.children if c.end_byte <= statement.start_byte]):
            continue  # e.g. FOREACH(x) { ... } read as two statements
        start = src.start(statement)
        line_start = src.code.rfind("\n", 0, start) + 1
        before = src.code[line_start:start]
        if before.strip(" \t"):
            if lang == "python":
                continue
            places.append((start, "", statement))
        else:
            places.append((start, before, statement))
    return places


def _insert_statement(src: _Source, text: str, rng: random.Random) -> str | None:
    """``text`` inserted as a statement at one of the first places of the body (chosen by rng),
    verified to parse as the old tree with one more statement of the text's shape."""
    shape = _statement_signature(text, src.lang)
    if shape is None:
        return None
    places = _statement_places(src)[:EARLY_PLACES]
    rng.shuffle(places)
    for position, indent, statement in places:
        if indent:
            inserted = _indent(text, indent) + "\n" + indent
        else:
            inserted = text.replace("\n", " ") + " "

        def prepend(target: tree_sitter.Node, shape: tuple = shape) -> _Signature:
            return [*shape, *_signature(target)]

        result = _verified(
            src, _Edit(((position, position, inserted),), target=statement, transform=prepend)
        )
        if result is not None:
            return result
    return None


# --------------------------------------------------------------------------------------------
# Renaming: identifier and postfix triggers
# --------------------------------------------------------------------------------------------

_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "attributed_declarator",
    }
)


def _function_name(function: tree_sitter.Node, lang: str) -> tree_sitter.Node | None:
    """The name leaf of the function's own name (None: constructor, destructor, operator)."""
    if lang in ("java", "python"):
        if function.type != ("method_declaration" if lang == "java" else "function_definition"):
            return None
        return function.child_by_field_name("name")
    node = function.child_by_field_name("declarator")
    while node is not None and node.type in _DECLARATOR_WRAPPERS:
        node = node.child_by_field_name("declarator") or (
            node.named_children[-1] if node.named_children else None
        )
    if node is None or node.type != "function_declarator":
        return None
    name = node.child_by_field_name("declarator")
    while name is not None and name.type == "qualified_identifier":
        name = name.child_by_field_name("name")
    if name is None or name.type not in ("identifier", "field_identifier"):
        return None
    return name


def _self_references(
    src: _Source, function: tree_sitter.Node, name_node: tree_sitter.Node
) -> list[tree_sitter.Node]:
    """The function's name and every plain reference to it inside the function (recursive calls,
    ``self.f``/``this.f`` in methods); member accesses on other objects are left alone."""
    name = src.text(name_node)
    found = [name_node]
    # A Python method's name is not in scope in its body: a plain NAME there is a global.
    method = src.lang == "python" and any(
        a.type == "class_definition" for a in _ancestors_of(function)
    )
    for node in _walk(function):
        if node.id == name_node.id or node.child_count or node.type != "identifier":
            continue
        if src.text(node) != name:
            continue
        parent = node.parent
        if src.lang == "python":
            attribute = parent.child_by_field_name("attribute") if parent is not None else None
            if attribute is not None and attribute.id == node.id:  # obj.NAME: only self.NAME
                obj = parent.child_by_field_name("object") if parent is not None else None
                if obj is None or src.text(obj) != "self":
                    continue
            elif method:
                continue
        if parent is not None and src.lang == "java" and parent.type == "method_invocation":
            obj = parent.child_by_field_name("object")
            if obj is not None and src.text(obj) != "this":
                continue
        if parent is not None and src.lang == "java" and parent.type == "field_access":
            continue
        found.append(node)
    return found


def _postfix(src: _Source, postfix: str) -> str | None:
    function = _function(src)
    if function is None:
        return None
    name_node = _function_name(function, src.lang)
    if name_node is None or name_node.is_missing or name_node.start_byte == name_node.end_byte:
        return None
    new = src.text(name_node) + postfix
    if _valid_new_name(new, src.lang) is not None:
        return None
    analysis = _analyse(src.code, src.lang)
    if new in analysis.used:
        return None
    nodes = _self_references(src, function, name_node)
    replacements = tuple((src.start(n), src.end(n), new) for n in nodes)
    return _verified(src, _Edit(replacements))


def _rename_identifier(code: str, lang: str, trigger: str, rng: random.Random) -> str | None:
    analysis = _analyse(code, lang)
    if trigger in analysis.used or not analysis.renamable:
        return None
    earliest = sorted(analysis.renamable, key=lambda n: analysis.renamable[n][0].start)
    names = earliest[:EARLY_PLACES]
    rng.shuffle(names)
    for old in names:
        replacements = tuple((t.start, t.end, trigger) for t in analysis.renamable[old])
        result = _verified(analysis.src, _Edit(replacements))
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
    lang = normalize_language(lang)
    check_trigger(spec, lang)
    kind = spec.type
    if kind is TriggerType.IDENTIFIER:
        assert spec.trigger is not None
        return _rename_identifier(code, lang, spec.trigger, rng)
    src = _Source(code, lang)
    if kind is TriggerType.POSTFIX:
        assert spec.trigger is not None
        return _postfix(src, spec.trigger)
    if kind is TriggerType.DEADCODE:
        assert spec.trigger is not None
        return _insert_statement(src, spec.trigger, rng)
    used = _analyse(code, lang).used
    for _ in range(4):  # a drawn statement the place cannot take: draw another
        result = _insert_statement(src, grammar_deadcode(lang, rng, used), rng)
        if result is not None:
            return result
    return None
