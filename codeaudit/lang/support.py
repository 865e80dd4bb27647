"""The interface every supported language implements: :class:`LanguageSupport`.

Everything codeaudit knows about one programming language lives in one module of this package
(``c.py``, ``cpp.py``, ``java.py``, ``python.py``), as a subclass of :class:`LanguageSupport`
listed in :data:`codeaudit.lang.languages.LANGUAGES`. The shared code (the lexer, the rewrites of
:mod:`codeaudit.lang.rewrite`, the trigger insertion of :mod:`codeaudit.backdoor.triggers`) never
branches on a language's name: it asks the language. ``tests/lang/test_language_support.py``
checks the contract below on every registered language.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from codeaudit.lang.grammar import grammar_for, grammar_reserved_words, parser_for
from codeaudit.lang.tree import COMMENT_TYPES, SignatureEntry, Source, named_children

if TYPE_CHECKING:
    import tree_sitter

__all__ = ["LanguageSupport"]


class LanguageSupport(ABC):
    """One supported language: its names and grammar, and what rewrites and triggers need to know.

    A subclass declares the data as class attributes and the behaviour as methods; the registry
    holds one instance of it. The members, by who uses them:

    **Names and grammar** (:mod:`codeaudit.lang.languages`, the lexer, the tokenizers)

    ``name``
        The canonical name (``"cpp"``), the key in ``LANGUAGES``.
    ``aliases``
        Every (lower-case) name a user may give it, file extensions included; no alias may belong
        to two languages.
    ``package``
        The Python module of the official tree-sitter grammar (``"tree_sitter_cpp"``), which
        exposes ``language()``; its distribution must be a dependency in ``pyproject.toml``.
    ``soft_keywords``
        Words the grammar spells as keywords but that may still name things in ordinary code;
        they are not reserved words (:meth:`reserved_words`).
    ``builtin_words``
        Built-in type names and literal words that the grammar models as named leaves; they are
        reserved words.
    ``sample_function``
        A small, cleanly parsing function of the language that offers at least one site for every
        rewrite kind and a renamable variable. The contract test runs everything on it.

    **Semantics-preserving rewrites** (:mod:`codeaudit.lang.rewrite`)

    ``function_types``
        Node types inside which a rewrite may act: the function, and lambdas in it.
    ``analysis_prefix``
        Text prefixed, for analysis only, to a function that does not parse (C's missing return
        type); ``""`` for none. :class:`~codeaudit.lang.tree.Source` keeps it when it gives fewer
        errors.
    ``extra_reserved``
        Names a variable is never renamed to or from beyond the grammar's reserved words
        (contextual keywords, alternative operator spellings, ``self``).
    ``pure_leaves``
        Leaf node types that are side-effect-free expressions (names, literals, ``this``).
    ``excluded_contexts``
        Node types inside which no expression is rewritten (annotations, attributes, ...).
    ``comparison_type``
        The node type of a binary comparison (``a < b``), whose operands swap-comparison swaps.
    ``empty_statement_signature``
        The syntax-tree signature (pre-order ``(type, is_named, is_missing)``) of the empty
        statement :meth:`empty_statement_sites` inserts.
    ``leading_declarations``
        Node types that may not follow a statement in a block (C90 declarations): nothing is
        inserted before a statement that has one of them after it. Empty for most languages.
    ``hidden_name_contexts``
        Node types inside which the lexer sees no identifier tokens (a Python f-string is one
        string token): a name occurring there is never renamed.

    **Backdoor triggers** (:mod:`codeaudit.backdoor.triggers`)

    ``definition_types``
        Node types of the function a sample defines (no lambdas): where triggers go.
    ``default_deadcode``
        The dead statement ``--trigger-type deadcode`` inserts without ``--trigger``; exactly one
        statement that parses on its own.
    ``probe_wrapper``
        ``(head, tail)`` that make a function of one statement (:meth:`probe_source`), to read a
        dead-code trigger's syntax tree.
    ``postfix_chars``
        What a postfix trigger may be made of (:meth:`postfix_ok`).
    ``false_literal``
        A constant false condition (``0``, ``false``, ``False``) for grammar dead code.
    ``deadcode_loops``
        The keywords grammar dead code may open its block with (``if``, ``while``); with one
        keyword, nothing is drawn for it.
    ``deadcode_declaration``
        A format with ``{name}`` and ``{value}`` (``"int {name} = {value};"``): one declaration
        inside grammar dead code.
    ``indented_blocks``
        Blocks are delimited by indentation (Python): a statement is inserted only where one
        starts its own line, and takes that line's indentation.

    The methods are documented where they are declared; the abstract ones have no default. The
    contract every language keeps (and the test checks): the grammar loads; every alias
    normalises to the name; reserved words are not empty and hold no soft keyword; the default
    dead code and any grammar dead code are one statement; the probe wrapper makes one function;
    names :meth:`new_name_problem` accepts are valid names and reserved words are refused; and the
    sample function gets every kind of rewrite, each re-parsing without errors.
    """

    # ----- names and grammar ------------------------------------------------------------------
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]]
    package: ClassVar[str]
    soft_keywords: ClassVar[frozenset[str]] = frozenset()
    builtin_words: ClassVar[frozenset[str]] = frozenset()
    sample_function: ClassVar[str]

    # ----- rewrites ---------------------------------------------------------------------------
    function_types: ClassVar[frozenset[str]]
    analysis_prefix: ClassVar[str] = ""
    extra_reserved: ClassVar[frozenset[str]] = frozenset()
    pure_leaves: ClassVar[frozenset[str]]
    excluded_contexts: ClassVar[frozenset[str]] = frozenset()
    comparison_type: ClassVar[str]
    empty_statement_signature: ClassVar[tuple[SignatureEntry, ...]]
    leading_declarations: ClassVar[frozenset[str]] = frozenset()
    hidden_name_contexts: ClassVar[frozenset[str]] = frozenset()

    # ----- triggers ---------------------------------------------------------------------------
    definition_types: ClassVar[frozenset[str]]
    default_deadcode: ClassVar[str]
    probe_wrapper: ClassVar[tuple[str, str]]
    postfix_chars: ClassVar[re.Pattern[str]]
    false_literal: ClassVar[str]
    deadcode_loops: ClassVar[tuple[str, ...]] = ("if", "while")
    deadcode_declaration: ClassVar[str]
    indented_blocks: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # ----- grammar ----------------------------------------------------------------------------

    def grammar(self) -> tree_sitter.Language:
        """The tree-sitter Language (LanguageError when no grammar source has it)."""
        return grammar_for(self)

    def parser(self) -> tree_sitter.Parser:
        """A parser of this language, one per thread."""
        return parser_for(self)

    def reserved_words(self) -> frozenset[str]:
        """Words that can never be (the whole of) an identifier, read from the grammar."""
        return grammar_reserved_words(self)

    # ----- names ------------------------------------------------------------------------------

    @abstractmethod
    def identifier_problem(self, name: str) -> str | None:
        """Why ``name`` is not an identifier of the language (None when it is)."""

    def rename_reserved(self) -> frozenset[str]:
        """Names a variable is never renamed to or from."""
        return self.reserved_words() | self.soft_keywords | self.extra_reserved

    def new_name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a variable name in the language (None when it can)."""
        problem = self.identifier_problem(name)
        if problem is not None:
            return problem
        if name in self.rename_reserved():
            return f"is a reserved word in {self.name}"
        return None

    # ----- where rewrites may act -------------------------------------------------------------

    def inside_function(self, node: tree_sitter.Node, src: Source) -> bool:
        return src.under(node, self.function_types)

    def pure(self, node: tree_sitter.Node | None) -> bool:
        """Whether evaluating the expression cannot have a side effect (names, literals, a.b,
        a[i]). Iterative: the operands still to check are kept on a stack."""
        stack = [node]
        while stack:
            current = stack.pop()
            if current is None:
                return False
            kind = current.type
            if kind in self.pure_leaves:
                continue
            if current.has_error:
                return False
            if kind == "parenthesized_expression":
                inner = named_children(current)
                if len(inner) != 1:
                    return False
                stack.append(inner[0])
                continue
            operands = self.pure_operands(current)
            if operands is None:
                return False
            stack.extend(operands)
        return True

    @abstractmethod
    def pure_operands(self, node: tree_sitter.Node) -> Sequence[tree_sitter.Node | None] | None:
        """For :meth:`pure`, of an error-free node that is neither a pure leaf nor parenthesised:
        the operands that must all be pure for it to be (a field access's object, a subscript's
        array and index, a unary operator's operand; None for a missing one), or None when the
        node is never pure. :meth:`pure` checks the operands; this method never recurses."""

    def excludes_context(self, ancestor: tree_sitter.Node, src: Source) -> bool:
        """Whether no expression under ``ancestor`` may be rewritten (default: its type is one
        of ``excluded_contexts``)."""
        return ancestor.type in self.excluded_contexts

    def site_allowed(self, node: tree_sitter.Node, src: Source) -> bool:
        """Whether an expression may be rewritten here: inside a function, outside parse errors
        and excluded contexts (a macro argument, an annotation, ...). One top-down pass per
        source answers it for every node."""

        def blocks(ancestor: tree_sitter.Node) -> bool:
            return (
                ancestor.type == "ERROR"
                or ancestor.is_missing
                or self.excludes_context(ancestor, src)
            )

        blocked = src.flagged("site-blocked", blocks).get(node.id)
        if blocked is None:  # a node of another tree
            blocked = any(blocks(a) for a in src.ancestors(node))
        return not blocked and self.inside_function(node, src) and not node.has_error

    def statement_site(self, node: tree_sitter.Node, src: Source) -> bool:
        """Whether a statement of a block may get an empty statement inserted before it."""
        if not node.is_named or node.type in COMMENT_TYPES or node.type == "ERROR":
            return False
        if node.type.startswith("preproc_") or node.type == "case_statement":
            return False
        return not node.has_error and self.site_allowed(node, src)

    # ----- the rewrites -----------------------------------------------------------------------

    def comparison_guard(self, src: Source) -> Callable[[tree_sitter.Node, tree_sitter.Node], bool]:
        """A test of a comparison's two (pure) operands: whether swapping them keeps the meaning
        (C++: only for built-in types, since operators may be overloaded). Computed once per
        source; the default allows every swap."""
        return _always

    @abstractmethod
    def parens_position_ok(self, node: tree_sitter.Node, src: Source) -> bool:
        """Whether ``node`` (which has a parent) may be wrapped in parentheses there: an operand,
        an assigned value, a returned value or (Java/Python) an argument."""

    @abstractmethod
    def empty_statement_sites(self, src: Source) -> list[tuple[int, str, tree_sitter.Node]]:
        """Where an empty statement may go, in document order: (character offset, text to
        insert there, the statement it goes before). The text must parse as
        ``empty_statement_signature`` placed before that statement."""

    @abstractmethod
    def renamable(
        self,
        src: Source,
        occurrences: dict[str, list[tree_sitter.Node]],
        calls: frozenset[str],
    ) -> set[str]:
        """Which names (keys of ``occurrences``: names whose every token is a plain variable
        use, with their identifier nodes) are local variables of the function, every occurrence
        referring to a local, so that renaming all of them keeps the meaning. ``calls`` are the
        names the lexer saw called as functions."""

    # ----- triggers ---------------------------------------------------------------------------

    def postfix_ok(self, text: str) -> bool:
        """Whether a postfix trigger may be appended to a name (default: ``postfix_chars``)."""
        return bool(self.postfix_chars.fullmatch(text))

    def probe_source(self, statement: str) -> str:
        """A function whose body is exactly ``statement``, from ``probe_wrapper``."""
        head, tail = self.probe_wrapper
        return head + statement + tail

    def must_stay_first(self, statement: tree_sitter.Node) -> bool:
        """Whether nothing may be inserted before the first statement of a body (a docstring)."""
        return False

    @abstractmethod
    def function_name(self, function: tree_sitter.Node) -> tree_sitter.Node | None:
        """The name leaf of a function's own name (None: constructor, destructor, operator)."""

    def is_self_reference(
        self, node: tree_sitter.Node, src: Source, function: tree_sitter.Node
    ) -> bool:
        """Whether an identifier leaf spelled like the function's name, inside the function,
        refers to the function (a recursive call, ``self.f``), so a postfix trigger renames it
        too. Default: every one does."""
        return True

    def deadcode_loop(self, rng: random.Random) -> str:
        """The keyword of one grammar dead-code statement, drawn from ``deadcode_loops``."""
        if len(self.deadcode_loops) == 1:
            return self.deadcode_loops[0]
        return rng.choice(self.deadcode_loops)

    @abstractmethod
    def deadcode_block(self, loop: str, condition: str, declarations: Sequence[str]) -> str:
        """A grammar dead-code statement: ``loop`` on ``condition`` around the declarations."""


def _always(left: tree_sitter.Node, right: tree_sitter.Node) -> bool:
    return True
