"""What C, C++ and Java share: braces and ``;``, declared locals, C-style dead code.

:class:`CLikeSupport` implements the parts of :class:`~codeaudit.lang.support.LanguageSupport`
that are the same in the three languages: comparisons are ``binary_expression`` nodes, an empty
statement is a ``;`` in a block, a variable is renamable when every occurrence lies in the scope of
one of its local declarations, and grammar dead code is ``if (0 > 1) { int k_3 = 7; }``. Each
language supplies its declarations (:meth:`CLikeSupport.declarations`) and the contexts where a
name must not be touched (:meth:`CLikeSupport.context_ok`).
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from codeaudit.lang.support import LanguageSupport
from codeaudit.lang.tree import COMMENT_TYPES, Source, errors_before, last_index_of, walk

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["PURE_UNARY", "CLikeSupport", "Decl"]

#: Unary operators without side effects (C adds ``*`` and ``&``).
PURE_UNARY = frozenset({"-", "+", "!", "~"})


@dataclass(frozen=True)
class Decl:
    """A local declaration: where its name is, and the character span where it is in scope.

    ``builtin`` (C/C++) says the declared type is arithmetic or a pointer/array, so that
    comparisons of the name cannot call an overloaded C++ operator.
    """

    name_start: int
    scope_start: int
    scope_end: int
    builtin: bool = False


class CLikeSupport(LanguageSupport):
    """The shared part of C, C++ and Java. Adds two data members:

    ``block_type``
        The node type of a braced block of statements, where empty statements go.
    ``name_pattern``
        What an identifier looks like.
    """

    block_type: ClassVar[str]
    name_pattern: ClassVar[re.Pattern[str]]

    comparison_type = "binary_expression"
    deadcode_declaration = "int {name} = {value};"

    def identifier_problem(self, name: str) -> str | None:
        if not self.name_pattern.fullmatch(name):
            return f"is not a valid {self.name} identifier"
        return None

    # ----- empty statements -------------------------------------------------------------------

    def empty_statement_sites(self, src: Source) -> list[tuple[int, str, tree_sitter.Node]]:
        sites = []
        for block in walk(src.root):
            if block.type != self.block_type:
                continue
            if src.parent(block) is not None and src.parent(block).type == "switch_statement":
                continue
            children = block.children
            last_declaration = last_index_of(children, self.leading_declarations)
            after_error = errors_before(children)
            for index, statement in enumerate(children):
                if not self.statement_site(statement, src):
                    continue
                if index <= last_declaration:
                    continue  # C90 forbids a declaration after a statement in a block
                if after_error[index]:
                    continue  # e.g. FOREACH(x) { ... } read as two statements: ';' would split them
                previous = children[index - 1] if index else None
                if (
                    previous is not None
                    and previous.type not in COMMENT_TYPES
                    and not previous.type.startswith("preproc_")
                ):
                    position, text = src.end(previous), ";"
                else:
                    position, text = src.start(statement), "; "
                sites.append((position, text, statement))
        return sites

    # ----- renamable locals -------------------------------------------------------------------

    @abstractmethod
    def declarations(self, src: Source) -> tuple[dict[str, list[Decl]], set[str]]:
        """Local declarations by name (parameters included), and names that must not be renamed
        (``extern``)."""

    @abstractmethod
    def context_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        """Whether an identifier occurrence may be renamed where it is (not part of macro, label
        or member syntax)."""

    def macro_like(self, name: str) -> bool:
        """Whether a name looks like one the preprocessor may expand or paste elsewhere."""
        return False

    def renamable(
        self,
        src: Source,
        occurrences: dict[str, list[tree_sitter.Node]],
        calls: frozenset[str],
    ) -> set[str]:
        decls, banned = self.declarations(src)
        names = set()
        for name, declared in decls.items():
            if name in banned or name not in occurrences:
                continue
            if self.macro_like(name):
                continue  # looks like a macro or an attribute: may be expanded or pasted elsewhere
            starts = {d.name_start for d in declared}
            ok = True
            for node in occurrences[name]:
                start, end = src.start(node), src.end(node)
                if not self.context_ok(node, src):
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

    # ----- grammar dead code ------------------------------------------------------------------

    def deadcode_block(self, loop: str, condition: str, declarations: Sequence[str]) -> str:
        return f"{loop} ({condition}) {{ {' '.join(declarations)} }}"
