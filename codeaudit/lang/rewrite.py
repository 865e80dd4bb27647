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
"""

from __future__ import annotations

import keyword
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from codeaudit.lang.languages import LANGUAGES, get_parser, normalize_language, reserved_words
from codeaudit.lang.lexer import CodeToken, IdentRole, TokenKind, lex

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "FRESH_NAMES",
    "RewriteKind",
    "apply_rewrite",
    "fresh_names",
    "random_rewrites",
    "renamable_variables",
    "rename_variable",
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

_SignatureEntry = tuple[str, bool, bool]
_Signature = list[_SignatureEntry]

# Where a rewrite may act: inside one of these (the function, or a lambda in it).
_FUNCTION_TYPES = {
    "c": frozenset({"function_definition"}),
    "cpp": frozenset({"function_definition", "lambda_expression"}),
    "java": frozenset(
        {
            "method_declaration",
            "constructor_declaration",
            "compact_constructor_declaration",
            "lambda_expression",
        }
    ),
    "python": frozenset({"function_definition", "lambda"}),
}
# Text prefixed (for analysis only) to C/C++ functions whose return type is missing.
_ANALYSIS_PREFIX = {"c": "int ", "cpp": "int "}
_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_SWAPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_C_ALT_TOKENS = frozenset(
    {"and", "and_eq", "bitand", "bitor", "compl", "not", "not_eq", "or", "or_eq", "xor", "xor_eq"}
)
_EXTRA_RESERVED = {
    "c": _C_ALT_TOKENS | {"asm", "typeof", "restrict", "inline"},
    "cpp": _C_ALT_TOKENS | {"final", "override", "import", "module", "concept", "requires"},
    "java": frozenset({"_", "var", "yield", "record", "sealed", "permits", "when"}),
    "python": frozenset({"_", "match", "case", "type", "print", "exec", "self"}),
}
_NAME_PATTERN = {
    "c": re.compile(r"[A-Za-z_][A-Za-z0-9_]*"),
    "cpp": re.compile(r"[A-Za-z_][A-Za-z0-9_]*"),
    "java": re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*"),
}
_MACRO_LIKE = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9_]")  # two or more characters, all capitals
# Calls whose arguments may name struct members or be turned into text (macros).
_FIELD_MACRO = re.compile(
    r"offsetof|container_of|_entry|for_each|typeof|decltype|assert|sizeof_field|field_sizeof",
    re.IGNORECASE,
)
# Python calls that expose local names by their spelling.
_PY_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "globals", "dir"})


# --------------------------------------------------------------------------------------------
# Parsed source with character offsets
# --------------------------------------------------------------------------------------------


class _Source:
    """A parsed function: the text, its tree, and byte-to-character offset mapping.

    Big-Vul style C/C++ functions often lack their return type (``foo(int a) {...}``), which
    tree-sitter cannot parse as a function. When prefixing ``int `` parses with fewer errors, the
    prefixed text is what is analysed; every offset this class returns still refers to ``code``.
    """

    def __init__(self, code: str, lang: str) -> None:
        self.code = code
        self.lang = lang
        parser = get_parser(lang)
        plain = parser.parse(code.encode("utf-8", "surrogatepass")).root_node
        self.plain_errors = _error_count(plain)
        self.prefix = ""
        root = plain
        if plain.has_error and lang in _ANALYSIS_PREFIX:
            prefix = _ANALYSIS_PREFIX[lang]
            alternative = parser.parse((prefix + code).encode("utf-8", "surrogatepass")).root_node
            if _error_count(alternative) < self.plain_errors:
                self.prefix, root = prefix, alternative
        self.full = self.prefix + code
        self.root: tree_sitter.Node = root
        self._char_at: list[int] | None = None
        data_length = len(self.full.encode("utf-8", "surrogatepass"))
        if data_length != len(self.full):
            char_at = [0] * (data_length + 1)
            pos = 0
            for index, char in enumerate(self.full):
                width = len(char.encode("utf-8", "surrogatepass"))
                for k in range(width):
                    char_at[pos + k] = index
                pos += width
            char_at[pos] = len(self.full)
            self._char_at = char_at

    def _char(self, byte_offset: int) -> int:
        return byte_offset if self._char_at is None else self._char_at[byte_offset]

    def start(self, node: tree_sitter.Node) -> int:
        """Character offset in ``code`` where the node starts."""
        return self._char(node.start_byte) - len(self.prefix)

    def end(self, node: tree_sitter.Node) -> int:
        return self._char(node.end_byte) - len(self.prefix)

    def text(self, node: tree_sitter.Node) -> str:
        return self.full[self._char(node.start_byte) : self._char(node.end_byte)]

    def parse(self, code: str) -> tree_sitter.Node:
        """The tree of another version of the code, read the same way (same prefix)."""
        data = (self.prefix + code).encode("utf-8", "surrogatepass")
        return get_parser(self.lang).parse(data).root_node


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node`` (included), in document (pre-)order, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _entry(node: tree_sitter.Node) -> _SignatureEntry:
    return (node.type, node.is_named, node.is_missing)


def _signature(
    root: tree_sitter.Node,
    target: tree_sitter.Node | None = None,
    transform: Callable[[tree_sitter.Node], _Signature] | None = None,
) -> _Signature:
    """The tree's node kinds in pre-order; ``target``'s subtree replaced by ``transform(target)``.

    Two trees with equal signatures have the same structure (and the same ERROR and MISSING
    nodes); only the text of named leaves (names, literals) may differ.
    """
    out: _Signature = []
    stack = [root]
    while stack:
        node = stack.pop()
        if (
            target is not None
            and transform is not None
            and node.start_byte == target.start_byte
            and node.end_byte == target.end_byte
            and node.id == target.id
        ):
            out.extend(transform(node))
            continue
        out.append(_entry(node))
        stack.extend(reversed(node.children))
    return out


def _error_count(root: tree_sitter.Node) -> int:
    return sum(1 for node in _walk(root) if node.type == "ERROR" or node.is_missing)


def _ancestors(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _is_field(parent: tree_sitter.Node, child: tree_sitter.Node, name: str) -> bool:
    """Whether ``child`` is (one of) ``parent``'s children under field ``name``."""
    return any(target.id == child.id for target in parent.children_by_field_name(name))


def _inside_function(node: tree_sitter.Node, lang: str) -> bool:
    types = _FUNCTION_TYPES[lang]
    return any(a.type in types for a in _ancestors(node))


# --------------------------------------------------------------------------------------------
# Candidate edits and their verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edit:
    """Text replacements (character spans of the old text) and the tree change they must make."""

    replacements: tuple[tuple[int, int, str], ...]
    target: tree_sitter.Node | None = None
    transform: Callable[[tree_sitter.Node], _Signature] | None = None


def _apply_text(code: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    parts: list[str] = []
    position = 0
    for start, end, text in sorted(replacements):
        parts.append(code[position:start])
        parts.append(text)
        position = end
    parts.append(code[position:])
    return "".join(parts)


def _verified(src: _Source, edit: _Edit) -> str | None:
    """The rewritten text if it parses exactly as intended, else None."""
    new_code = _apply_text(src.code, edit.replacements)
    if new_code == src.code:  # e.g. 5 == 5 swapped: not a rewrite
        return None
    expected = _signature(src.root, edit.target, edit.transform)
    if _signature(src.parse(new_code)) != expected:
        return None
    if src.prefix:  # the text as it is must not gain parse errors either
        plain = get_parser(src.lang).parse(new_code.encode("utf-8", "surrogatepass")).root_node
        if _error_count(plain) > src.plain_errors:
            return None
    return new_code


# --------------------------------------------------------------------------------------------
# Side-effect-free expressions and the places where they may be touched
# --------------------------------------------------------------------------------------------

_PURE_LEAVES = {
    "c": frozenset(
        {"identifier", "number_literal", "char_literal", "string_literal", "true", "false", "null"}
    ),
    "cpp": frozenset(
        {
            "identifier",
            "number_literal",
            "char_literal",
            "string_literal",
            "true",
            "false",
            "null",
            "nullptr",
            "this",
        }
    ),
    "java": frozenset(
        {
            "identifier",
            "decimal_integer_literal",
            "hex_integer_literal",
            "octal_integer_literal",
            "binary_integer_literal",
            "decimal_floating_point_literal",
            "hex_floating_point_literal",
            "string_literal",
            "character_literal",
            "true",
            "false",
            "null_literal",
            "this",
        }
    ),
    "python": frozenset({"identifier", "integer", "float", "true", "false", "none"}),
}
_PURE_UNARY = frozenset({"-", "+", "!", "~"})
_PY_PLAIN_STRING_PARTS = frozenset(
    {"string_start", "string_content", "string_end", "escape_sequence"}
)


def _named_children(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [c for c in node.named_children if c.type not in _COMMENT_TYPES]


def _pure(node: tree_sitter.Node | None, lang: str) -> bool:
    """Whether evaluating the expression cannot have a side effect (names, literals, a.b, a[i])."""
    if node is None:
        return False
    kind = node.type
    if kind in _PURE_LEAVES[lang]:
        return True
    if node.has_error:
        return False
    if kind == "parenthesized_expression":
        inner = _named_children(node)
        return len(inner) == 1 and _pure(inner[0], lang)
    if lang in ("c", "cpp"):
        if kind == "field_expression":
            return _pure(node.child_by_field_name("argument"), lang)
        if kind == "subscript_expression":
            index = node.child_by_field_name("index")
            if index is None:
                indices = node.child_by_field_name("indices")
                inner = _named_children(indices) if indices is not None else []
                index = inner[0] if len(inner) == 1 else None
            return _pure(node.child_by_field_name("argument"), lang) and _pure(index, lang)
        if kind in ("unary_expression", "pointer_expression"):
            operator = node.child_by_field_name("operator")
            return (
                operator is not None
                and operator.type in (_PURE_UNARY | {"*", "&"})
                and _pure(node.child_by_field_name("argument"), lang)
            )
        if kind == "qualified_identifier":
            return lang == "cpp"
        return False
    if lang == "java":
        if kind == "field_access":
            return _pure(node.child_by_field_name("object"), lang)
        if kind == "array_access":
            return _pure(node.child_by_field_name("array"), lang) and _pure(
                node.child_by_field_name("index"), lang
            )
        if kind == "unary_expression":
            operator = node.child_by_field_name("operator")
            return (
                operator is not None
                and operator.type in _PURE_UNARY
                and _pure(node.child_by_field_name("operand"), lang)
            )
        return False
    # python
    if kind == "string":
        return all(c.type in _PY_PLAIN_STRING_PARTS for c in node.children)
    if kind == "attribute":
        return _pure(node.child_by_field_name("object"), lang)
    if kind == "subscript":
        subscripts = node.children_by_field_name("subscript")
        return (
            _pure(node.child_by_field_name("value"), lang)
            and len(subscripts) == 1
            and _pure(subscripts[0], lang)
        )
    if kind == "unary_operator":
        return _pure(node.child_by_field_name("argument"), lang)
    if kind == "not_operator":
        return _pure(node.child_by_field_name("argument"), lang)
    return False


_C_EXCLUDED_CONTEXT = frozenset(
    {
        "decltype",
        "template_argument_list",
        "static_assert_declaration",
        "attribute_specifier",
        "attribute",
        "attribute_declaration",
        "gnu_asm_expression",
        "enumerator",
        "bitfield_clause",
        "macro_type_specifier",
    }
)
_JAVA_EXCLUDED_CONTEXT = frozenset(
    {"annotation", "marker_annotation", "element_value_pair", "switch_label"}
)
_PY_EXCLUDED_CONTEXT = frozenset(
    {"string", "interpolation", "type", "case_pattern", "case_clause", "decorator"}
)


def _callee_name(call: tree_sitter.Node, src: _Source) -> str:
    function = call.child_by_field_name("function")
    return src.text(function) if function is not None else ""


def _site_allowed(node: tree_sitter.Node, src: _Source) -> bool:
    """Whether an expression may be rewritten here (not in a macro argument, annotation, ...)."""
    lang = src.lang
    inside = False
    for ancestor in _ancestors(node):
        kind = ancestor.type
        if kind == "ERROR" or ancestor.is_missing:
            return False
        if kind in _FUNCTION_TYPES[lang]:
            inside = True
        if lang in ("c", "cpp"):
            if kind.startswith("preproc_") or kind in _C_EXCLUDED_CONTEXT:
                return False
            if kind == "argument_list" and ancestor.parent is not None:
                callee = _callee_name(ancestor.parent, src)
                if _MACRO_LIKE.fullmatch(callee.split("::")[-1]) or _FIELD_MACRO.search(callee):
                    return False  # a macro could turn its argument into text or a member name
        elif lang == "java":
            if kind in _JAVA_EXCLUDED_CONTEXT:
                return False
        elif kind in _PY_EXCLUDED_CONTEXT:
            return False
    return inside and not node.has_error


# --------------------------------------------------------------------------------------------
# swap-comparison
# --------------------------------------------------------------------------------------------


_CPP_BUILTIN_LEAVES = frozenset(
    {"number_literal", "char_literal", "string_literal", "true", "false", "null", "nullptr", "this"}
)


def _cpp_builtin(node: tree_sitter.Node, src: _Source, decls: dict[str, list[_Decl]]) -> bool:
    """Whether a C++ operand surely has a built-in type (so ``<`` is not an overloaded call)."""
    kind = node.type
    if kind in _CPP_BUILTIN_LEAVES:
        return True
    if kind == "parenthesized_expression":
        inner = _named_children(node)
        return len(inner) == 1 and _cpp_builtin(inner[0], src, decls)
    if kind == "unary_expression":
        argument = node.child_by_field_name("argument")
        return argument is not None and _cpp_builtin(argument, src, decls)
    if kind == "identifier":
        declared = decls.get(src.text(node), [])
        start, end = src.start(node), src.end(node)
        return (
            bool(declared)
            and all(d.builtin for d in declared)
            and any(d.scope_start <= start and end <= d.scope_end for d in declared)
        )
    return False


def _swap_edits(src: _Source) -> list[_Edit]:
    lang = src.lang
    comparison = "comparison_operator" if lang == "python" else "binary_expression"
    # C++ operators may be overloaded, and a class may define < without >: only built-in types.
    decls = _c_declarations(src)[0] if lang == "cpp" else {}
    edits = []
    for node in _walk(src.root):
        if node.type != comparison or node.child_count != 3:
            continue
        left, operator, right = node.children
        if operator.is_named or operator.type not in _SWAPPED:
            continue
        if not (_pure(left, lang) and _pure(right, lang) and _site_allowed(node, src)):
            continue
        if lang == "cpp" and not (
            _cpp_builtin(left, src, decls) and _cpp_builtin(right, src, decls)
        ):
            continue
        new_op = _SWAPPED[operator.type]
        text = (
            src.text(right)
            + src.code[src.end(left) : src.start(operator)]
            + new_op
            + src.code[src.end(operator) : src.start(right)]
            + src.text(left)
        )

        def transform(target: tree_sitter.Node, new_op: str = new_op) -> _Signature:
            first, _, second = target.children
            return [
                _entry(target),
                *_signature(second),
                (new_op, False, False),
                *_signature(first),
            ]

        edits.append(
            _Edit(((src.start(node), src.end(node), text),), target=node, transform=transform)
        )
    return edits


# --------------------------------------------------------------------------------------------
# redundant-parens
# --------------------------------------------------------------------------------------------


def _parens_position_ok(node: tree_sitter.Node, src: _Source) -> bool:
    """Whether ``node`` is an operand, assigned value, returned value or (Java/Python) argument."""
    parent = node.parent
    if parent is None:
        return False
    kind = parent.type
    lang = src.lang
    if lang in ("c", "cpp"):
        if node.type == "string_literal":
            return False  # char s[] = ("x") is not a valid array initialiser
        if kind == "binary_expression":
            return _is_field(parent, node, "left") or _is_field(parent, node, "right")
        if kind == "assignment_expression":
            return _is_field(parent, node, "right")
        if kind == "init_declarator":
            return _is_field(parent, node, "value")
        if kind == "return_statement":
            # decltype(auto) deduces a reference type from a parenthesised name.
            return lang == "c" or "decltype" not in src.code
        return False
    if lang == "java":
        if kind == "binary_expression":
            return _is_field(parent, node, "left") or _is_field(parent, node, "right")
        if kind == "assignment_expression":
            return _is_field(parent, node, "right")
        if kind == "variable_declarator":
            return _is_field(parent, node, "value")
        if kind == "return_statement":
            return True
        if kind == "argument_list":
            return parent.parent is not None and parent.parent.type in (
                "method_invocation",
                "object_creation_expression",
            )
        return False
    if kind in ("binary_operator", "boolean_operator"):
        return _is_field(parent, node, "left") or _is_field(parent, node, "right")
    if kind == "comparison_operator":
        return True
    if kind in ("assignment", "augmented_assignment"):
        return _is_field(parent, node, "right")
    if kind == "return_statement":
        return True
    if kind == "argument_list":
        return parent.parent is not None and parent.parent.type == "call"
    return False


def _wrap(target: tree_sitter.Node) -> _Signature:
    return [
        ("parenthesized_expression", True, False),
        ("(", False, False),
        *_signature(target),
        (")", False, False),
    ]


def _parens_edits(src: _Source) -> list[_Edit]:
    edits = []
    for node in _walk(src.root):
        if not node.is_named or node.type == "parenthesized_expression":
            continue
        if not (_pure(node, src.lang) and _parens_position_ok(node, src)):
            continue
        if not _site_allowed(node, src):
            continue
        start, end = src.start(node), src.end(node)
        edits.append(_Edit(((start, start, "("), (end, end, ")")), target=node, transform=_wrap))
    return edits


# --------------------------------------------------------------------------------------------
# empty-statement
# --------------------------------------------------------------------------------------------

_EMPTY_SIGNATURE: dict[str, _Signature] = {
    "c": [("expression_statement", True, False), (";", False, False)],
    "cpp": [("expression_statement", True, False), (";", False, False)],
    "java": [(";", False, False)],
    "python": [("pass_statement", True, False), ("pass", False, False)],
}
_BLOCK_TYPE = {"c": "compound_statement", "cpp": "compound_statement", "java": "block"}
_C_DECLARATIONS = frozenset({"declaration", "type_definition"})


def _statement_site(node: tree_sitter.Node, src: _Source) -> bool:
    """Whether a statement of a block may get an empty statement inserted before it."""
    if not node.is_named or node.type in _COMMENT_TYPES or node.type == "ERROR":
        return False
    if node.type.startswith("preproc_") or node.type == "case_statement":
        return False
    return not node.has_error and _site_allowed(node, src)


def _follows_error(before: Sequence[tree_sitter.Node]) -> bool:
    """Whether the last non-comment node of ``before`` is (or holds) a parse error."""
    for node in reversed(before):
        if node.type not in _COMMENT_TYPES:
            return node.type == "ERROR" or node.is_missing or node.has_error
    return False


def _empty_edits(src: _Source) -> list[_Edit]:
    lang = src.lang
    edits = []

    def prepend(target: tree_sitter.Node) -> _Signature:
        return [*_EMPTY_SIGNATURE[lang], *_signature(target)]

    if lang == "python":
        for block in _walk(src.root):
            if block.type != "block" or block.parent is None:
                continue
            statements = [c for c in block.named_children if c.type not in _COMMENT_TYPES]
            for index, statement in enumerate(statements):
                # A docstring must stay the first statement of a function or class body.
                if index == 0 and block.parent.type in ("function_definition", "class_definition"):
                    continue
                start = src.start(statement)
                line_start = src.code.rfind("\n", 0, start) + 1
                indent = src.code[line_start:start]
                if indent.strip(" \t") or not _statement_site(statement, src):
                    continue
                if _follows_error(statements[:index]):
                    continue
                edits.append(
                    _Edit(((start, start, "pass\n" + indent),), target=statement, transform=prepend)
                )
        return edits

    block_type = _BLOCK_TYPE[lang]
    for block in _walk(src.root):
        if block.type != block_type:
            continue
        if block.parent is not None and block.parent.type == "switch_statement":
            continue
        children = block.children
        for index, statement in enumerate(children):
            if not _statement_site(statement, src):
                continue
            if lang == "c" and any(c.type in _C_DECLARATIONS for c in children[index:]):
                continue  # C90 forbids a declaration after a statement in a block
            if _follows_error(children[:index]):
                continue  # e.g. FOREACH(x) { ... } read as two statements: ';' would split them
            previous = children[index - 1] if index else None
            if (
                previous is not None
                and previous.type not in _COMMENT_TYPES
                and not previous.type.startswith("preproc_")
            ):
                position, text = src.end(previous), ";"
            else:
                position, text = src.start(statement), "; "
            edits.append(_Edit(((position, position, text),), target=statement, transform=prepend))
    return edits


# --------------------------------------------------------------------------------------------
# Which names are local variables of the function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decl:
    """A local declaration: where its name is, and the character span where it is in scope.

    ``builtin`` (C/C++) says the declared type is arithmetic or a pointer/array, so that
    comparisons of the name cannot call an overloaded C++ operator.
    """

    name_start: int
    scope_start: int
    scope_end: int
    builtin: bool = False


_C_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "array_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "init_declarator",
        "attributed_declarator",
    }
)
_C_SCOPES = frozenset(
    {
        "compound_statement",
        "for_statement",
        "for_range_loop",
        "if_statement",
        "while_statement",
        "switch_statement",
        "catch_clause",
        "lambda_expression",
        "function_definition",
    }
)
_C_DENY_PARENT: dict[str, str | None] = {
    "enumerator": None,
    "qualified_identifier": None,
    "using_declaration": None,
    "namespace_alias_definition": None,
    "alias_declaration": None,
    "macro_type_specifier": None,
    "attribute": None,
    "lambda_capture_initializer": "left",
    "preproc_def": None,
    "preproc_function_def": None,
    "preproc_params": None,
    "preproc_defined": None,
    "preproc_call": None,
    "preproc_include": None,
    "preproc_ifdef": "name",
    "preproc_elifdef": "name",
    "structured_binding_declarator": None,
}
_JAVA_SCOPES = frozenset(
    {
        "block",
        "switch_block",
        "constructor_body",
        "for_statement",
        "enhanced_for_statement",
        "catch_clause",
        "lambda_expression",
        "method_declaration",
        "constructor_declaration",
        "compact_constructor_declaration",
        "try_with_resources_statement",
        "switch_rule",
    }
)
_JAVA_DENY_PARENT: dict[str, str | None] = {
    "labeled_statement": None,
    "break_statement": None,
    "continue_statement": None,
    "method_reference": None,
    "element_value_pair": None,
    "annotation": None,
    "marker_annotation": None,
    "switch_label": None,
    "enum_constant": None,
    "scoped_identifier": None,
    "import_declaration": None,
    "package_declaration": None,
}
_JAVA_FUNCTIONS = frozenset(
    {"method_declaration", "constructor_declaration", "compact_constructor_declaration"}
)


def _nearest(node: tree_sitter.Node, types: frozenset[str]) -> tree_sitter.Node | None:
    for ancestor in _ancestors(node):
        if ancestor.type in types:
            return ancestor
    return None


def _c_declarations(src: _Source) -> tuple[dict[str, list[_Decl]], set[str]]:
    """Local declarations of C/C++ names, and names that must not be renamed (``extern``)."""
    decls: dict[str, list[_Decl]] = {}
    banned: set[str] = set()
    for node in _walk(src.root):
        if node.type != "identifier" or not _inside_function(node, src.lang):
            continue
        current = node
        parent = node.parent
        wrappers = set()
        while parent is not None and parent.type in _C_DECLARATOR_WRAPPERS:
            if parent.type in ("reference_declarator", "parenthesized_declarator"):
                if _named_children(parent)[:1] != [current]:
                    break
            elif not _is_field(parent, current, "declarator"):
                break
            wrappers.add(parent.type)
            current, parent = parent, parent.parent
        if parent is None:
            continue
        scope: tree_sitter.Node | None = None
        scope_start = src.end(node)
        if parent.type in ("parameter_declaration", "optional_parameter_declaration"):
            if not _is_field(parent, current, "declarator"):
                continue
            plist = parent.parent
            owner = plist.parent if plist is not None else None
            if owner is None or plist is None:
                continue
            if owner.type == "catch_clause":
                scope = owner
            elif owner.type in ("abstract_function_declarator", "lambda_declarator") and (
                owner.parent is not None and owner.parent.type == "lambda_expression"
            ):
                scope = owner.parent
            elif owner.type == "function_declarator":
                outer = owner
                while outer.parent is not None and outer.parent.type in _C_DECLARATOR_WRAPPERS:
                    outer = outer.parent
                if outer.parent is not None and outer.parent.type == "function_definition":
                    scope = outer.parent
            if scope is None:
                scope = plist  # a parameter of a prototype: in scope in its parameter list only
        elif parent.type == "declaration" and _is_field(parent, current, "declarator"):
            if any(
                c.type == "storage_class_specifier" and src.text(c) == "extern"
                for c in parent.children
            ):
                banned.add(src.text(node))
                continue
            kind = parent.child_by_field_name("type")
            if kind is not None and kind.type == "macro_type_specifier":
                banned.add(src.text(node))  # FOREACH(x) y = 1; read as a declaration of y
                continue
            scope = _nearest(parent, _C_SCOPES)
        elif parent.type == "for_range_loop" and _is_field(parent, current, "declarator"):
            scope = parent
            body = parent.child_by_field_name("body")
            scope_start = src.start(body) if body is not None else src.end(parent)
        if scope is None:
            continue
        type_node = parent.child_by_field_name("type")
        builtin = bool(wrappers & {"pointer_declarator", "array_declarator"}) or (
            type_node is not None and type_node.type in ("primitive_type", "sized_type_specifier")
        )
        decls.setdefault(src.text(node), []).append(
            _Decl(src.start(node), scope_start, src.end(scope), builtin)
        )
    return decls, banned


def _java_declarations(src: _Source) -> tuple[dict[str, list[_Decl]], set[str]]:
    decls: dict[str, list[_Decl]] = {}
    for node in _walk(src.root):
        if node.type != "identifier" or not _inside_function(node, "java"):
            continue
        parent = node.parent
        if parent is None:
            continue
        kind = parent.type
        scope: tree_sitter.Node | None = None
        scope_start = src.end(node)
        if kind == "variable_declarator" and _is_field(parent, node, "name"):
            holder = parent.parent
            if holder is None:
                continue
            if holder.type == "local_variable_declaration":
                scope = _nearest(holder, _JAVA_SCOPES - {"switch_rule"})
            elif holder.type == "spread_parameter":
                owner = holder.parent.parent if holder.parent is not None else None
                if owner is not None and owner.type in (_JAVA_FUNCTIONS | {"lambda_expression"}):
                    scope = owner
        elif kind == "formal_parameter" and _is_field(parent, node, "name"):
            owner = parent.parent.parent if parent.parent is not None else None
            if owner is not None and owner.type in (_JAVA_FUNCTIONS | {"lambda_expression"}):
                scope = owner
        elif kind in ("catch_formal_parameter", "resource") and _is_field(parent, node, "name"):
            scope = _nearest(parent, frozenset({"catch_clause", "try_with_resources_statement"}))
        elif kind == "enhanced_for_statement" and _is_field(parent, node, "name"):
            scope = parent
            body = parent.child_by_field_name("body")
            scope_start = src.start(body) if body is not None else src.end(parent)
        elif (kind == "lambda_expression" and _is_field(parent, node, "parameters")) or (
            kind == "inferred_parameters"
        ):
            scope = parent if kind == "lambda_expression" else parent.parent
        elif kind in ("instanceof_expression", "type_pattern", "record_pattern_component"):
            # Pattern variables: flow scoping, approximated by the enclosing block.
            scope = _nearest(parent, frozenset({"block", "switch_block", "switch_rule"}))
        if scope is None:
            continue
        decls.setdefault(src.text(node), []).append(
            _Decl(src.start(node), scope_start, src.end(scope))
        )
    return decls, set()


def _deny_by_parent(node: tree_sitter.Node, deny: dict[str, str | None]) -> bool:
    parent = node.parent
    if parent is None or parent.type not in deny:
        return False
    field = deny[parent.type]
    return field is None or _is_field(parent, node, field)


def _c_context_ok(node: tree_sitter.Node, src: _Source) -> bool:
    """A C/C++ identifier occurrence that is not part of macro, label or member syntax."""
    if _deny_by_parent(node, _C_DENY_PARENT):
        return False
    child = node
    for ancestor in _ancestors(node):
        kind = ancestor.type
        if kind in ("preproc_if", "preproc_elif") and _is_field(ancestor, child, "condition"):
            return False
        if kind in ("preproc_def", "preproc_function_def", "preproc_call", "preproc_include"):
            return False
        if kind == "argument_list" and ancestor.parent is not None:
            callee = _callee_name(ancestor.parent, src)
            if _FIELD_MACRO.search(callee):
                return False
        if kind in ("decltype", "template_argument_list") and src.lang == "cpp":
            return False
        child = ancestor
    return True


def _java_context_ok(node: tree_sitter.Node, src: _Source) -> bool:
    if _deny_by_parent(node, _JAVA_DENY_PARENT):
        return False
    parent = node.parent
    if (
        parent is not None
        and parent.type == "variable_declarator"
        and parent.parent is not None
        and parent.parent.type in ("field_declaration", "constant_declaration")
    ):
        return False
    # Inside a class declared in the function, a bare name may mean an inherited field.
    seen_class_body = False
    for ancestor in _ancestors(node):
        if ancestor.type in ("class_body", "enum_body", "interface_body"):
            seen_class_body = True
        elif seen_class_body and ancestor.type in (_JAVA_FUNCTIONS | {"lambda_expression"}):
            return False
    return True


def _clike_renamable(src: _Source, occurrences: dict[str, list[tree_sitter.Node]]) -> set[str]:
    lang = src.lang
    if lang == "java":
        decls, banned = _java_declarations(src)
        context_ok = _java_context_ok
    else:
        decls, banned = _c_declarations(src)
        context_ok = _c_context_ok
    names = set()
    for name, declared in decls.items():
        if name in banned or name not in occurrences:
            continue
        if lang in ("c", "cpp") and (_MACRO_LIKE.fullmatch(name) or name.startswith("__")):
            continue  # looks like a macro or an attribute: may be expanded or pasted elsewhere
        starts = {d.name_start for d in declared}
        ok = True
        for node in occurrences[name]:
            start, end = src.start(node), src.end(node)
            if not context_ok(node, src):
                ok = False
            elif start not in starts and not any(
                d.scope_start <= start and end <= d.scope_end for d in declared
            ):
                ok = False  # a use outside every local declaration: a global or a member
            if not ok:
                break
        if ok:
            names.add(name)
    return names


# ----- Python scopes --------------------------------------------------------------------------

_PY_COMPREHENSIONS = frozenset(
    {"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"}
)
_PY_SCOPES = _PY_COMPREHENSIONS | {"function_definition", "lambda", "class_definition"}
_PY_TARGET_WRAPPERS = frozenset(
    {
        "pattern_list",
        "tuple_pattern",
        "list_pattern",
        "list_splat_pattern",
        "dictionary_splat_pattern",
        "tuple",
        "list",
        "expression_list",
        "parenthesized_expression",
        "as_pattern_target",
    }
)
_PY_PARAMETER_LISTS = frozenset({"parameters", "lambda_parameters"})
_PY_DENY_PARENT: dict[str, str | None] = {
    "keyword_argument": "name",
    "global_statement": None,
    "nonlocal_statement": None,
    "import_statement": None,
    "import_from_statement": None,
    "aliased_import": None,
    "dotted_name": None,
    "keyword_pattern": None,
    "class_pattern": None,
    "type_alias_statement": None,
    "future_import_statement": None,
}
_PY_EXCLUDED_NAME_CONTEXT = frozenset({"case_pattern", "case_clause", "decorator"})


def _py_binding(node: tree_sitter.Node) -> str | None:
    """How an identifier binds a name: 'param', 'local', 'walrus', or None for a plain use."""
    current = node
    parent = node.parent
    while parent is not None and parent.type in _PY_TARGET_WRAPPERS:
        current, parent = parent, parent.parent
    if parent is None:
        return None
    kind = parent.type
    if kind in _PY_PARAMETER_LISTS:
        return "param"
    if kind in ("default_parameter", "typed_default_parameter"):
        return "param" if _is_field(parent, current, "name") else None
    if kind == "typed_parameter":
        return "param" if current.type != "type" else None
    if kind in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
        return "local" if _is_field(parent, current, "left") else None
    if kind == "as_pattern":
        return "local" if _is_field(parent, current, "alias") else None
    if kind == "named_expression":
        return "walrus" if _is_field(parent, current, "name") else None
    if kind == "delete_statement":
        return "local"
    return None


def _py_scope(node: tree_sitter.Node, binding: str | None) -> tree_sitter.Node | None:
    """The scope (function, lambda, comprehension, class; None = module) a name is looked up in."""
    child = node
    for ancestor in _ancestors(node):
        kind = ancestor.type
        if kind in ("function_definition", "lambda"):
            if _is_field(ancestor, child, "body"):
                return ancestor
            if binding == "param" and _is_field(ancestor, child, "parameters"):
                return ancestor
        elif kind == "class_definition":
            if _is_field(ancestor, child, "body"):
                return ancestor
        elif kind in _PY_COMPREHENSIONS:
            first = next((c for c in ancestor.named_children if c.type == "for_in_clause"), None)
            iterable = first.child_by_field_name("right") if first is not None else None
            in_first_iterable = iterable is not None and (
                iterable.start_byte <= node.start_byte and node.end_byte <= iterable.end_byte
            )
            if not in_first_iterable:
                return ancestor
        child = ancestor
    return None


def _py_parent_scope(scope: tree_sitter.Node) -> tree_sitter.Node | None:
    return _py_scope(scope, None)


def _python_renamable(
    src: _Source, occurrences: dict[str, list[tree_sitter.Node]], tokens: Sequence[CodeToken]
) -> set[str]:
    if any(t.role is IdentRole.FUNCTION and t.text in _PY_INTROSPECTION for t in tokens):
        return set()  # locals(), eval(), ... see names by their spelling
    bindings: dict[int, set[str]] = {}
    scope_of: dict[int, tree_sitter.Node | None] = {}
    scopes: dict[int, tree_sitter.Node | None] = {}
    for name, nodes in occurrences.items():
        for node in nodes:
            binding = _py_binding(node)
            scope = _py_scope(node, binding)
            if binding == "walrus":
                while scope is not None and scope.type in _PY_COMPREHENSIONS:
                    scope = _py_parent_scope(scope)
            scope_of[node.id] = scope
            if binding is not None:
                key = scope.id if scope is not None else 0
                bindings.setdefault(key, set()).add(name)
                scopes[key] = scope

    def resolves_locally(name: str, scope: tree_sitter.Node | None) -> bool:
        while scope is not None:
            if name in bindings.get(scope.id, ()):
                return scope.type != "class_definition"  # a class attribute is not a variable
            scope = _py_parent_scope(scope)
            while scope is not None and scope.type == "class_definition":
                scope = _py_parent_scope(scope)
        return False  # a global or builtin

    names = set()
    for name, nodes in occurrences.items():
        if not any(name in bound for bound in bindings.values()):
            continue
        if all(
            not _deny_by_parent(node, _PY_DENY_PARENT)
            and not any(a.type in _PY_EXCLUDED_NAME_CONTEXT for a in _ancestors(node))
            and resolves_locally(name, scope_of[node.id])
            for node in nodes
        ):
            names.add(name)
    return names


# ----- shared analysis ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Analysis:
    src: _Source
    tokens: tuple[CodeToken, ...]
    used: frozenset[str]
    renamable: dict[str, tuple[CodeToken, ...]]


def _reserved(lang: str) -> frozenset[str]:
    return reserved_words(lang) | LANGUAGES[lang].soft_keywords | _EXTRA_RESERVED[lang]


def _analyse(code: str, lang: str) -> _Analysis:
    src = _Source(code, lang)
    shift = len(src.prefix)
    tokens = tuple(
        replace(t, start=t.start - shift, end=t.end - shift) if shift else t
        for t in lex(src.full, lang).tokens
        if t.start >= shift
    )
    identifier_nodes: dict[tuple[int, int], tree_sitter.Node] = {}
    used: set[str] = {t.text for t in tokens}
    hidden: set[str] = set()  # names the lexer cannot see (inside f-strings)
    for node in _walk(src.root):
        if node.type.endswith("identifier") and node.child_count == 0:
            text = src.text(node)
            used.add(text)
            if node.type == "identifier":
                identifier_nodes[(src.start(node), src.end(node))] = node
                if lang == "python" and any(a.type == "string" for a in _ancestors(node)):
                    hidden.add(text)

    by_text: dict[str, list[CodeToken]] = {}
    for token in tokens:
        by_text.setdefault(token.text, []).append(token)
    reserved = _reserved(lang)
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

    if lang == "python":
        names = _python_renamable(src, occurrences, tokens)
    else:
        names = _clike_renamable(src, occurrences)
    renamable = {name: tuple(by_text[name]) for name in sorted(names)}
    return _Analysis(src, tokens, frozenset(used), renamable)


def _valid_new_name(name: str, lang: str) -> str | None:
    """Why ``name`` cannot be a variable name in ``lang`` (None when it can)."""
    if lang == "python":
        if not name.isidentifier() or keyword.iskeyword(name):
            return "is not a valid Python identifier"
    elif not _NAME_PATTERN[lang].fullmatch(name):
        return f"is not a valid {lang} identifier"
    if name in _reserved(lang):
        return f"is a reserved word in {lang}"
    return None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def supported_kinds(lang: str) -> tuple[RewriteKind, ...]:
    """The rewrite kinds offered for a language (all four, for C, C++, Java and Python)."""
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
    lang = normalize_language(lang)
    return list(_analyse(code, lang).renamable)


def rename_variable(code: str, lang: str, old: str, new: str) -> str:
    """Replace every occurrence of the variable `old` with `new` using the lexer's token spans
    (so strings, comments and substrings of other names are untouched). ValueError (one line) if
    `old` is not renamable, `new` is not a valid identifier in the language, is reserved, or
    already occurs in the function.
    """
    lang = normalize_language(lang)
    problem = _valid_new_name(new, lang)
    if problem is not None:
        raise ValueError(f"cannot rename to {new!r}: it {problem}")
    analysis = _analyse(code, lang)
    if old not in analysis.renamable:
        raise ValueError(f"{old!r} is not a renamable local variable of this {lang} function")
    if new in analysis.used:
        raise ValueError(f"cannot rename to {new!r}: the name already occurs in the function")
    result = _rename(analysis, old, new)
    if result is None:
        raise ValueError(f"renaming {old!r} to {new!r} would change how the code parses")
    return result


def _rename(analysis: _Analysis, old: str, new: str) -> str | None:
    replacements = tuple((t.start, t.end, new) for t in analysis.renamable[old])
    return _verified(analysis.src, _Edit(replacements))


def fresh_names(code: str, lang: str, count: int = 1) -> list[str]:
    """The first ``count`` names of :data:`FRESH_NAMES` (then ``v1``, ``v2``, ...) that are valid
    in the language and do not occur in the function."""
    lang = normalize_language(lang)
    return _fresh(_analyse(code, lang).used, lang, count)


def _fresh(used: frozenset[str], lang: str, count: int) -> list[str]:
    names = [n for n in FRESH_NAMES if n not in used and _valid_new_name(n, lang) is None]
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
    lang = normalize_language(lang)
    kind = RewriteKind(kind)
    if kind is RewriteKind.RENAME_VARIABLE:
        analysis = _analyse(code, lang)
        names = list(analysis.renamable)
        rng.shuffle(names)
        pool = _fresh(analysis.used, lang, len(FRESH_NAMES))
        for old in names:
            result = _rename(analysis, old, rng.choice(pool))
            if result is not None:
                return result
        return None
    src = _Source(code, lang)
    finder = {
        RewriteKind.SWAP_COMPARISON: _swap_edits,
        RewriteKind.EMPTY_STATEMENT: _empty_edits,
        RewriteKind.REDUNDANT_PARENS: _parens_edits,
    }[kind]
    edits = finder(src)
    rng.shuffle(edits)
    for edit in edits:
        result = _verified(src, edit)
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
