"""Python: names, grammar, and what rewrites and triggers need to know (:class:`PythonSupport`).

Python has no declarations: a name is local to the function, lambda, comprehension or class
that binds it, and a variable is renamable when every occurrence resolves to a binding of the
function or of a function nested in it. Blocks are delimited by indentation, so an inserted
statement takes its own line at the block's indentation.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from codeaudit.lang.support import LanguageSupport
from codeaudit.lang.tree import (
    COMMENT_TYPES,
    Source,
    deny_by_parent,
    errors_before,
    indent_continuation,
    is_field,
    walk,
)

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["PythonSupport"]

# Calls that expose local names by their spelling.
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "globals", "dir"})
_PLAIN_STRING_PARTS = frozenset({"string_start", "string_content", "string_end", "escape_sequence"})
_COMPREHENSIONS = frozenset(
    {"list_comprehension", "set_comprehension", "dictionary_comprehension", "generator_expression"}
)
_TARGET_WRAPPERS = frozenset(
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
_PARAMETER_LISTS = frozenset({"parameters", "lambda_parameters"})
_DENY_PARENT: dict[str, str | None] = {
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
_EXCLUDED_NAME_CONTEXT = frozenset({"case_pattern", "case_clause", "decorator"})
_CLASS = frozenset({"class_definition"})
_INDENT = "    "


class PythonSupport(LanguageSupport):
    name = "python"
    aliases = ("python", "py", "python3")
    package = "tree_sitter_python"
    soft_keywords = frozenset({"_", "__future__", "case", "exec", "match", "print", "type"})
    builtin_words = frozenset({"True", "False", "None"})
    sample_function = (
        "def clamp(value, limit):\n"
        "    result = value\n"
        "    if result > limit:\n"
        "        result = limit\n"
        "    return result\n"
    )

    # Rewrites
    function_types = frozenset({"function_definition", "lambda"})
    extra_reserved = frozenset({"_", "match", "case", "type", "print", "exec", "self"})
    pure_leaves = frozenset({"identifier", "integer", "float", "true", "false", "none"})
    excluded_contexts = frozenset(
        {"string", "interpolation", "type", "case_pattern", "case_clause", "decorator"}
    )
    comparison_type = "comparison_operator"
    empty_statement_signature = (("pass_statement", True, False), ("pass", False, False))
    hidden_name_contexts = frozenset({"string"})  # f-string interpolations

    # Triggers
    definition_types = frozenset({"function_definition"})
    default_deadcode = "if False:\n    rb_dead = 0"
    probe_wrapper = ("def codeaudit_probe():\n", "\n")
    postfix_chars = re.compile(r"\w+")
    false_literal = "False"
    deadcode_declaration = "{name} = {value}"
    indented_blocks = True

    def identifier_problem(self, name: str) -> str | None:
        if not name.isidentifier() or keyword.iskeyword(name):
            return "is not a valid Python identifier"
        return None

    # ----- side-effect-free expressions and where they may be touched -------------------------

    def pure_operands(self, node: tree_sitter.Node) -> Sequence[tree_sitter.Node | None] | None:
        kind = node.type
        if kind == "string":
            return () if all(c.type in _PLAIN_STRING_PARTS for c in node.children) else None
        if kind == "attribute":
            return (node.child_by_field_name("object"),)
        if kind == "subscript":
            subscripts = node.children_by_field_name("subscript")
            if len(subscripts) != 1:
                return None
            return (node.child_by_field_name("value"), subscripts[0])
        if kind in ("unary_operator", "not_operator"):
            return (node.child_by_field_name("argument"),)
        return None

    def parens_position_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        parent = src.parent(node)
        if parent is None:
            return False
        kind = parent.type
        if kind in ("binary_operator", "boolean_operator"):
            return is_field(parent, node, "left") or is_field(parent, node, "right")
        if kind == "comparison_operator":
            return True
        if kind in ("assignment", "augmented_assignment"):
            return is_field(parent, node, "right")
        if kind == "return_statement":
            return True
        if kind == "argument_list":
            return src.parent(parent) is not None and src.parent(parent).type == "call"
        return False

    def empty_statement_sites(self, src: Source) -> list[tuple[int, str, tree_sitter.Node]]:
        sites = []
        for block in walk(src.root):
            if block.type != "block" or src.parent(block) is None:
                continue
            statements = [c for c in block.named_children if c.type not in COMMENT_TYPES]
            after_error = errors_before(statements)
            for index, statement in enumerate(statements):
                # A docstring must stay the first statement of a function or class body.
                if index == 0 and src.parent(block).type in (
                    "function_definition",
                    "class_definition",
                ):
                    continue
                start = src.start(statement)
                line_start = src.code.rfind("\n", 0, start) + 1
                indent = src.code[line_start:start]
                if indent.strip(" \t") or not self.statement_site(statement, src):
                    continue
                if after_error[index]:
                    continue
                sites.append((start, "pass\n" + indent, statement))
        return sites

    # ----- renamable locals: Python scopes ----------------------------------------------------

    def renamable(
        self,
        src: Source,
        occurrences: dict[str, list[tree_sitter.Node]],
        calls: frozenset[str],
    ) -> set[str]:
        if calls & _INTROSPECTION:
            return set()  # locals(), eval(), ... see names by their spelling
        bindings: dict[int, set[str]] = {}
        scope_of: dict[int, tree_sitter.Node | None] = {}
        scopes: dict[int, tree_sitter.Node | None] = {}
        for name, nodes in occurrences.items():
            for node in nodes:
                binding = _binding(node, src)
                scope = _scope(node, binding, src)
                if binding == "walrus":
                    while scope is not None and scope.type in _COMPREHENSIONS:
                        scope = _parent_scope(scope, src)
                scope_of[node.id] = scope
                if binding is not None:
                    key = scope.id if scope is not None else 0
                    bindings.setdefault(key, set()).add(name)
                    scopes[key] = scope

        def resolves_locally(name: str, scope: tree_sitter.Node | None) -> bool:
            while scope is not None:
                if name in bindings.get(scope.id, ()):
                    return scope.type != "class_definition"  # a class attribute is not a variable
                scope = _parent_scope(scope, src)
                while scope is not None and scope.type == "class_definition":
                    scope = _parent_scope(scope, src)
            return False  # a global or builtin

        names = set()
        for name, nodes in occurrences.items():
            if not any(name in bound for bound in bindings.values()):
                continue
            if all(
                not deny_by_parent(node, _DENY_PARENT, src)
                and not src.under(node, _EXCLUDED_NAME_CONTEXT)
                and resolves_locally(name, scope_of[node.id])
                for node in nodes
            ):
                names.add(name)
        return names

    # ----- triggers ---------------------------------------------------------------------------

    def postfix_ok(self, text: str) -> bool:
        return super().postfix_ok(text) and ("f" + text).isidentifier()

    def probe_source(self, statement: str) -> str:
        head, tail = self.probe_wrapper
        return head + _INDENT + indent_continuation(statement, _INDENT) + tail

    def must_stay_first(self, statement: tree_sitter.Node) -> bool:
        return (  # a docstring
            statement.type == "expression_statement"
            and statement.named_child_count == 1
            and statement.named_children[0].type == "string"
        )

    def function_name(self, function: tree_sitter.Node) -> tree_sitter.Node | None:
        if function.type != "function_definition":
            return None
        return function.child_by_field_name("name")

    def is_self_reference(
        self, node: tree_sitter.Node, src: Source, function: tree_sitter.Node
    ) -> bool:
        parent = src.parent(node)
        attribute = parent.child_by_field_name("attribute") if parent is not None else None
        if attribute is not None and attribute.id == node.id:  # obj.NAME: only self.NAME
            obj = parent.child_by_field_name("object") if parent is not None else None
            return obj is not None and src.text(obj) == "self"
        # A Python method's name is not in scope in its body: a plain NAME there is a global.
        return not src.under(function, _CLASS)

    def deadcode_block(self, loop: str, condition: str, declarations: Sequence[str]) -> str:
        return f"{loop} {condition}:\n" + "\n".join(_INDENT + d for d in declarations)


def _binding(node: tree_sitter.Node, src: Source) -> str | None:
    """How an identifier binds a name: 'param', 'local', 'walrus', or None for a plain use."""
    current = node
    parent = src.parent(node)
    while parent is not None and parent.type in _TARGET_WRAPPERS:
        current, parent = parent, src.parent(parent)
    if parent is None:
        return None
    kind = parent.type
    if kind in _PARAMETER_LISTS:
        return "param"
    if kind in ("default_parameter", "typed_default_parameter"):
        return "param" if is_field(parent, current, "name") else None
    if kind == "typed_parameter":
        return "param" if current.type != "type" else None
    if kind in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
        return "local" if is_field(parent, current, "left") else None
    if kind == "as_pattern":
        return "local" if is_field(parent, current, "alias") else None
    if kind == "named_expression":
        return "walrus" if is_field(parent, current, "name") else None
    if kind == "delete_statement":
        return "local"
    return None


def _scope(node: tree_sitter.Node, binding: str | None, src: Source) -> tree_sitter.Node | None:
    """The scope (function, lambda, comprehension, class; None = module) a name is looked up in."""
    child = node
    for ancestor in src.ancestors(node):
        kind = ancestor.type
        if kind in ("function_definition", "lambda"):
            if is_field(ancestor, child, "body"):
                return ancestor
            if binding == "param" and is_field(ancestor, child, "parameters"):
                return ancestor
        elif kind == "class_definition":
            if is_field(ancestor, child, "body"):
                return ancestor
        elif kind in _COMPREHENSIONS:
            first = next((c for c in ancestor.named_children if c.type == "for_in_clause"), None)
            iterable = first.child_by_field_name("right") if first is not None else None
            in_first_iterable = iterable is not None and (
                iterable.start_byte <= node.start_byte and node.end_byte <= iterable.end_byte
            )
            if not in_first_iterable:
                return ancestor
        child = ancestor
    return None


def _parent_scope(scope: tree_sitter.Node, src: Source) -> tree_sitter.Node | None:
    return _scope(scope, None, src)
