"""C: names, grammar, and what rewrites and triggers need to know (:class:`CSupport`).

C code is full of macros the parser cannot see through, so C is careful: nothing is rewritten
inside a preprocessor directive or the argument of a call that looks like a macro, ALL_CAPS names
are never renamed, and Big-Vul style functions without a return type are analysed with ``int ``
prefixed. :mod:`codeaudit.lang.cpp` builds on this class.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from codeaudit.lang.clike import PURE_UNARY, CLikeSupport, Decl
from codeaudit.lang.tree import (
    Source,
    callee_name,
    deny_by_parent,
    is_field,
    named_children,
    walk,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import tree_sitter

__all__ = ["C_ALT_TOKENS", "C_TYPES", "CSupport"]

#: Built-in type names and literal words of C (and C++) that the grammars model as named leaves.
C_TYPES = frozenset(
    [
        "bool",
        "_Bool",
        "char",
        "int",
        "float",
        "double",
        "void",
        "size_t",
        "ssize_t",
        "ptrdiff_t",
        "intptr_t",
        "uintptr_t",
        "charptr_t",
        "nullptr_t",
        "max_align_t",
        "int8_t",
        "int16_t",
        "int32_t",
        "int64_t",
        "uint8_t",
        "uint16_t",
        "uint32_t",
        "uint64_t",
        "char8_t",
        "char16_t",
        "char32_t",
        "wchar_t",
        "true",
        "false",
        "NULL",
    ]
)
#: The alternative operator spellings (``and``, ``not_eq``, ...): keywords in C++, macros of
#: ``<iso646.h>`` in C.
C_ALT_TOKENS = frozenset(
    {"and", "and_eq", "bitand", "bitor", "compl", "not", "not_eq", "or", "or_eq", "xor", "xor_eq"}
)

_MACRO_LIKE = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9_]")  # two or more characters, all capitals
# Calls whose arguments may name struct members or be turned into text (macros).
_FIELD_MACRO = re.compile(
    r"offsetof|container_of|_entry|for_each|typeof|decltype|assert|sizeof_field|field_sizeof",
    re.IGNORECASE,
)
_EXCLUDED_CONTEXT = frozenset(
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
_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "array_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "init_declarator",
        "attributed_declarator",
    }
)
# Declarators between a function definition and its function_declarator (the name's place).
_NAME_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "attributed_declarator",
    }
)
_SCOPES = frozenset(
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
_DENY_PARENT: dict[str, str | None] = {
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


class CSupport(CLikeSupport):
    """C. Adds one data member:

    ``name_excluded_contexts``
        Node types inside which a name is never renamed (C++: ``decltype``, template arguments).
    """

    name = "c"
    aliases = ("c", "h")
    package = "tree_sitter_c"
    builtin_words = C_TYPES
    sample_function = (
        "int clamp(int value, int limit)\n"
        "{\n"
        "    int result = value;\n"
        "    if (result > limit)\n"
        "        result = limit;\n"
        "    return result;\n"
        "}\n"
    )

    # Rewrites
    function_types = frozenset({"function_definition"})
    analysis_prefix = "int "
    extra_reserved = C_ALT_TOKENS | {"asm", "typeof", "restrict", "inline"}
    name_pattern = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    pure_leaves = frozenset(
        {"identifier", "number_literal", "char_literal", "string_literal", "true", "false", "null"}
    )
    excluded_contexts = _EXCLUDED_CONTEXT
    block_type = "compound_statement"
    empty_statement_signature = (("expression_statement", True, False), (";", False, False))
    # C90 forbids a declaration after a statement in a block.
    leading_declarations = frozenset({"declaration", "type_definition"})
    name_excluded_contexts: ClassVar[frozenset[str]] = frozenset()

    # Triggers
    definition_types = frozenset({"function_definition"})
    default_deadcode = "if (0) { int rb_dead = 0; }"
    probe_wrapper = ("void codeaudit_probe(void) {\n", "\n}\n")
    postfix_chars = re.compile(r"[A-Za-z0-9_]+")
    false_literal = "0"

    # ----- side-effect-free expressions and where they may be touched -------------------------

    def pure_operands(self, node: tree_sitter.Node) -> Sequence[tree_sitter.Node | None] | None:
        kind = node.type
        if kind == "field_expression":
            return (node.child_by_field_name("argument"),)
        if kind == "subscript_expression":
            index = node.child_by_field_name("index")
            if index is None:
                indices = node.child_by_field_name("indices")
                inner = named_children(indices) if indices is not None else []
                index = inner[0] if len(inner) == 1 else None
            return (node.child_by_field_name("argument"), index)
        if kind in ("unary_expression", "pointer_expression"):
            operator = node.child_by_field_name("operator")
            if operator is None or operator.type not in (PURE_UNARY | {"*", "&"}):
                return None
            return (node.child_by_field_name("argument"),)
        return None

    def excludes_context(self, ancestor: tree_sitter.Node, src: Source) -> bool:
        kind = ancestor.type
        if kind.startswith("preproc_") or kind in self.excluded_contexts:
            return True
        if kind == "argument_list" and src.parent(ancestor) is not None:
            callee = callee_name(src.parent(ancestor), src)
            if _MACRO_LIKE.fullmatch(callee.split("::")[-1]) or _FIELD_MACRO.search(callee):
                return True  # a macro could turn its argument into text or a member name
        return False

    def parens_position_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        if node.type == "string_literal":
            return False  # char s[] = ("x") is not a valid array initialiser
        parent = src.parent(node)
        if parent is None:
            return False
        kind = parent.type
        if kind == "binary_expression":
            return is_field(parent, node, "left") or is_field(parent, node, "right")
        if kind == "assignment_expression":
            return is_field(parent, node, "right")
        if kind == "init_declarator":
            return is_field(parent, node, "value")
        if kind == "return_statement":
            return self.parenthesised_return_ok(src)
        return False

    def parenthesised_return_ok(self, src: Source) -> bool:
        """Whether ``return x;`` may become ``return (x);`` in this function."""
        return True

    # ----- renamable locals -------------------------------------------------------------------

    def declarations(self, src: Source) -> tuple[dict[str, list[Decl]], set[str]]:
        """Local declarations of C/C++ names, and names that must not be renamed (``extern``)."""
        decls: dict[str, list[Decl]] = {}
        banned: set[str] = set()
        for node in walk(src.root):
            if node.type != "identifier" or not self.inside_function(node, src):
                continue
            current = node
            parent = src.parent(node)
            wrappers = set()
            while parent is not None and parent.type in _DECLARATOR_WRAPPERS:
                if parent.type in ("reference_declarator", "parenthesized_declarator"):
                    if named_children(parent)[:1] != [current]:
                        break
                elif not is_field(parent, current, "declarator"):
                    break
                wrappers.add(parent.type)
                current, parent = parent, src.parent(parent)
            if parent is None:
                continue
            scope: tree_sitter.Node | None = None
            scope_start = src.end(node)
            if parent.type in ("parameter_declaration", "optional_parameter_declaration"):
                if not is_field(parent, current, "declarator"):
                    continue
                plist = src.parent(parent)
                owner = src.parent(plist) if plist is not None else None
                if owner is None or plist is None:
                    continue
                if owner.type == "catch_clause":
                    scope = owner
                elif owner.type in ("abstract_function_declarator", "lambda_declarator") and (
                    src.parent(owner) is not None and src.parent(owner).type == "lambda_expression"
                ):
                    scope = src.parent(owner)
                elif owner.type == "function_declarator":
                    outer = owner
                    while (
                        src.parent(outer) is not None
                        and src.parent(outer).type in _DECLARATOR_WRAPPERS
                    ):
                        outer = src.parent(outer)
                    if (
                        src.parent(outer) is not None
                        and src.parent(outer).type == "function_definition"
                    ):
                        scope = src.parent(outer)
                if scope is None:
                    scope = plist  # a parameter of a prototype: in scope in its parameter list only
            elif parent.type == "declaration" and is_field(parent, current, "declarator"):
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
                scope = src.nearest(parent, _SCOPES)
            elif parent.type == "for_range_loop" and is_field(parent, current, "declarator"):
                scope = parent
                body = parent.child_by_field_name("body")
                scope_start = src.start(body) if body is not None else src.end(parent)
            if scope is None:
                continue
            type_node = parent.child_by_field_name("type")
            builtin = bool(wrappers & {"pointer_declarator", "array_declarator"}) or (
                type_node is not None
                and type_node.type in ("primitive_type", "sized_type_specifier")
            )
            decls.setdefault(src.text(node), []).append(
                Decl(src.start(node), scope_start, src.end(scope), builtin)
            )
        return decls, banned

    def context_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        """A C/C++ identifier occurrence that is not part of macro, label or member syntax."""
        if deny_by_parent(node, _DENY_PARENT, src):
            return False
        child = node
        for ancestor in src.ancestors(node):
            kind = ancestor.type
            if kind in ("preproc_if", "preproc_elif") and is_field(ancestor, child, "condition"):
                return False
            if kind in ("preproc_def", "preproc_function_def", "preproc_call", "preproc_include"):
                return False
            if kind == "argument_list" and src.parent(ancestor) is not None:
                callee = callee_name(src.parent(ancestor), src)
                if _FIELD_MACRO.search(callee):
                    return False
            if kind in self.name_excluded_contexts:
                return False
            child = ancestor
        return True

    def macro_like(self, name: str) -> bool:
        return bool(_MACRO_LIKE.fullmatch(name) or name.startswith("__"))

    # ----- triggers ---------------------------------------------------------------------------

    def function_name(self, function: tree_sitter.Node) -> tree_sitter.Node | None:
        node = function.child_by_field_name("declarator")
        while node is not None and node.type in _NAME_DECLARATOR_WRAPPERS:
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
