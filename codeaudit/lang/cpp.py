"""C++: what differs from C (:class:`CppSupport`, a :class:`~codeaudit.lang.c.CSupport`).

Lambdas, ``this`` and ``nullptr``, qualified names, and operators that a class may overload: a
comparison is swapped only when both operands surely have a built-in type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from codeaudit.lang.c import C_ALT_TOKENS, C_TYPES, CSupport
from codeaudit.lang.clike import Decl
from codeaudit.lang.tree import Source, named_children

if TYPE_CHECKING:
    from collections.abc import Sequence

    import tree_sitter

__all__ = ["CppSupport"]

_BUILTIN_LEAVES = frozenset(
    {"number_literal", "char_literal", "string_literal", "true", "false", "null", "nullptr", "this"}
)


class CppSupport(CSupport):
    name = "cpp"
    aliases = ("cpp", "c++", "cc", "cxx", "hpp", "hh", "hxx")
    package = "tree_sitter_cpp"
    soft_keywords = frozenset({"final", "override", "concept", "requires"})
    builtin_words = C_TYPES | {"this", "nullptr", "auto"}
    sample_function = (
        "int clamp(int value, int limit) {\n"
        "    int result = value;\n"
        "    if (result > limit)\n"
        "        result = limit;\n"
        "    return result;\n"
        "}\n"
    )

    # Rewrites
    function_types = frozenset({"function_definition", "lambda_expression"})
    extra_reserved = C_ALT_TOKENS | {"final", "override", "import", "module", "concept", "requires"}
    pure_leaves = frozenset(
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
    )
    leading_declarations = frozenset()  # declarations may follow statements
    name_excluded_contexts = frozenset({"decltype", "template_argument_list"})

    # Triggers
    probe_wrapper = ("void codeaudit_probe() {\n", "\n}\n")

    def pure_operands(self, node: tree_sitter.Node) -> Sequence[tree_sitter.Node | None] | None:
        if node.type == "qualified_identifier":
            return ()
        return super().pure_operands(node)

    def comparison_guard(self, src: Source) -> Callable[[tree_sitter.Node, tree_sitter.Node], bool]:
        # C++ operators may be overloaded, and a class may define < without >: only built-in types.
        decls = self.declarations(src)[0]

        def guard(left: tree_sitter.Node, right: tree_sitter.Node) -> bool:
            return _builtin(left, src, decls) and _builtin(right, src, decls)

        return guard

    def parenthesised_return_ok(self, src: Source) -> bool:
        # decltype(auto) deduces a reference type from a parenthesised name.
        return "decltype" not in src.code


def _builtin(node: tree_sitter.Node, src: Source, decls: dict[str, list[Decl]]) -> bool:
    """Whether a C++ operand surely has a built-in type (so ``<`` is not an overloaded call)."""
    while node.type in ("parenthesized_expression", "unary_expression"):  # a loop, not recursion
        if node.type == "parenthesized_expression":
            inner = named_children(node)
            if len(inner) != 1:
                return False
            node = inner[0]
        else:
            argument = node.child_by_field_name("argument")
            if argument is None:
                return False
            node = argument
    kind = node.type
    if kind in _BUILTIN_LEAVES:
        return True
    if kind == "identifier":
        declared = decls.get(src.text(node), [])
        start, end = src.start(node), src.end(node)
        return (
            bool(declared)
            and all(d.builtin for d in declared)
            and any(d.scope_start <= start and end <= d.scope_end for d in declared)
        )
    return False
