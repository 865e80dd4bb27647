"""Java: names, grammar, and what rewrites and triggers need to know (:class:`JavaSupport`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from codeaudit.lang.clike import PURE_UNARY, CLikeSupport, Decl
from codeaudit.lang.tree import Source, deny_by_parent, is_field, walk

if TYPE_CHECKING:
    from collections.abc import Sequence

    import tree_sitter

__all__ = ["JavaSupport"]

_SCOPES = frozenset(
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
_DENY_PARENT: dict[str, str | None] = {
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
_FUNCTIONS = frozenset(
    {"method_declaration", "constructor_declaration", "compact_constructor_declaration"}
)


class JavaSupport(CLikeSupport):
    name = "java"
    aliases = ("java",)
    package = "tree_sitter_java"
    soft_keywords = frozenset(
        [
            "exports",
            "module",
            "open",
            "opens",
            "permits",
            "provides",
            "record",
            "requires",
            "sealed",
            "to",
            "transitive",
            "uses",
            "when",
            "with",
            "yield",
        ]
    )
    builtin_words = frozenset({"boolean", "void", "true", "false", "null", "this", "super"})
    sample_function = (
        "int clamp(int value, int limit) {\n"
        "    int result = value;\n"
        "    if (result > limit) {\n"
        "        result = limit;\n"
        "    }\n"
        "    return result;\n"
        "}\n"
    )

    # Rewrites
    function_types = _FUNCTIONS | {"lambda_expression"}
    extra_reserved = frozenset({"_", "var", "yield", "record", "sealed", "permits", "when"})
    name_pattern = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
    pure_leaves = frozenset(
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
    )
    excluded_contexts = frozenset(
        {"annotation", "marker_annotation", "element_value_pair", "switch_label"}
    )
    block_type = "block"
    empty_statement_signature = ((";", False, False),)

    # Triggers
    definition_types = frozenset({"method_declaration", "constructor_declaration"})
    default_deadcode = "if (false) { int rb_dead = 0; }"
    probe_wrapper = ("class CodeauditProbe { void probe() {\n", "\n} }\n")
    postfix_chars = re.compile(r"[A-Za-z0-9_$]+")
    false_literal = "false"
    deadcode_loops = ("if",)  # javac rejects a while whose body is unreachable

    # ----- side-effect-free expressions and where they may be touched -------------------------

    def pure_operands(self, node: tree_sitter.Node) -> Sequence[tree_sitter.Node | None] | None:
        kind = node.type
        if kind == "field_access":
            return (node.child_by_field_name("object"),)
        if kind == "array_access":
            return (node.child_by_field_name("array"), node.child_by_field_name("index"))
        if kind == "unary_expression":
            operator = node.child_by_field_name("operator")
            if operator is None or operator.type not in PURE_UNARY:
                return None
            return (node.child_by_field_name("operand"),)
        return None

    def parens_position_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        parent = src.parent(node)
        if parent is None:
            return False
        kind = parent.type
        if kind == "binary_expression":
            return is_field(parent, node, "left") or is_field(parent, node, "right")
        if kind == "assignment_expression":
            return is_field(parent, node, "right")
        if kind == "variable_declarator":
            return is_field(parent, node, "value")
        if kind == "return_statement":
            return True
        if kind == "argument_list":
            return src.parent(parent) is not None and src.parent(parent).type in (
                "method_invocation",
                "object_creation_expression",
            )
        return False

    # ----- renamable locals -------------------------------------------------------------------

    def declarations(self, src: Source) -> tuple[dict[str, list[Decl]], set[str]]:
        decls: dict[str, list[Decl]] = {}
        for node in walk(src.root):
            if node.type != "identifier" or not self.inside_function(node, src):
                continue
            parent = src.parent(node)
            if parent is None:
                continue
            kind = parent.type
            scope: tree_sitter.Node | None = None
            scope_start = src.end(node)
            if kind == "variable_declarator" and is_field(parent, node, "name"):
                holder = src.parent(parent)
                if holder is None:
                    continue
                if holder.type == "local_variable_declaration":
                    scope = src.nearest(holder, _SCOPES - {"switch_rule"})
                elif holder.type == "spread_parameter":
                    owner = (
                        src.parent(src.parent(holder)) if src.parent(holder) is not None else None
                    )
                    if owner is not None and owner.type in (_FUNCTIONS | {"lambda_expression"}):
                        scope = owner
            elif kind == "formal_parameter" and is_field(parent, node, "name"):
                owner = src.parent(src.parent(parent)) if src.parent(parent) is not None else None
                if owner is not None and owner.type in (_FUNCTIONS | {"lambda_expression"}):
                    scope = owner
            elif kind in ("catch_formal_parameter", "resource") and is_field(parent, node, "name"):
                scope = src.nearest(
                    parent, frozenset({"catch_clause", "try_with_resources_statement"})
                )
            elif kind == "enhanced_for_statement" and is_field(parent, node, "name"):
                scope = parent
                body = parent.child_by_field_name("body")
                scope_start = src.start(body) if body is not None else src.end(parent)
            elif (kind == "lambda_expression" and is_field(parent, node, "parameters")) or (
                kind == "inferred_parameters"
            ):
                scope = parent if kind == "lambda_expression" else src.parent(parent)
            elif kind in ("instanceof_expression", "type_pattern", "record_pattern_component"):
                # Pattern variables: flow scoping, approximated by the enclosing block.
                scope = src.nearest(parent, frozenset({"block", "switch_block", "switch_rule"}))
            if scope is None:
                continue
            decls.setdefault(src.text(node), []).append(
                Decl(src.start(node), scope_start, src.end(scope))
            )
        return decls, set()

    def context_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        if deny_by_parent(node, _DENY_PARENT, src):
            return False
        parent = src.parent(node)
        if (
            parent is not None
            and parent.type == "variable_declarator"
            and src.parent(parent) is not None
            and src.parent(parent).type in ("field_declaration", "constant_declaration")
        ):
            return False
        # Inside a class declared in the function, a bare name may mean an inherited field.
        seen_class_body = False
        for ancestor in src.ancestors(node):
            if ancestor.type in ("class_body", "enum_body", "interface_body"):
                seen_class_body = True
            elif seen_class_body and ancestor.type in (_FUNCTIONS | {"lambda_expression"}):
                return False
        return True

    # ----- triggers ---------------------------------------------------------------------------

    def function_name(self, function: tree_sitter.Node) -> tree_sitter.Node | None:
        if function.type != "method_declaration":
            return None  # a constructor's name is its class's
        return function.child_by_field_name("name")

    def is_self_reference(
        self, node: tree_sitter.Node, src: Source, function: tree_sitter.Node
    ) -> bool:
        parent = src.parent(node)
        if parent is not None and parent.type == "method_invocation":
            obj = parent.child_by_field_name("object")
            if obj is not None and src.text(obj) != "this":
                return False  # other.f(): another object's method
        return not (parent is not None and parent.type == "field_access")
