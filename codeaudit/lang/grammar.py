"""Where tree-sitter grammars come from, and the words a grammar reserves.

This is the one place that knows how a grammar is obtained. The default source is the language's
official grammar package (:attr:`~codeaudit.lang.support.LanguageSupport.package`, e.g.
``tree_sitter_c``), which exposes ``language()``; another source (a vendored build, a different
package) can be added with :func:`register_grammar_source` without touching the lexer. tree-sitter
itself is imported only when a grammar is first needed, so importing :mod:`codeaudit.lang` stays
cheap.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from codeaudit.errors import LanguageError

if TYPE_CHECKING:
    import tree_sitter

    from codeaudit.lang.support import LanguageSupport

__all__ = [
    "GrammarSource",
    "grammar_for",
    "grammar_reserved_words",
    "parser_for",
    "register_grammar_source",
]

GrammarSource = Callable[["LanguageSupport"], "object | None"]
"""Returns a tree-sitter language capsule (or ``tree_sitter.Language``) for a language, or None."""


def _package_source(language: LanguageSupport) -> object | None:
    try:
        module = importlib.import_module(language.package)
    except ImportError:
        return None
    return module.language()


_SOURCES: list[GrammarSource] = [_package_source]
_lock = threading.Lock()


def register_grammar_source(source: GrammarSource, *, first: bool = True) -> None:
    """Add a grammar source, tried before (default) or after the official grammar packages."""
    with _lock:
        if first:
            _SOURCES.insert(0, source)
        else:
            _SOURCES.append(source)
        grammar_for.cache_clear()


@cache
def grammar_for(language: LanguageSupport) -> tree_sitter.Language:
    """The tree-sitter Language of a supported language, from the first source that has it."""
    import tree_sitter

    for source in _SOURCES:
        capsule = source(language)
        if capsule is None:
            continue
        return (
            capsule if isinstance(capsule, tree_sitter.Language) else tree_sitter.Language(capsule)
        )
    package = language.package.replace("_", "-")
    raise LanguageError(
        f"no tree-sitter grammar for {language.name}: install the {package} package"
    )


_parsers = threading.local()


def parser_for(language: LanguageSupport) -> tree_sitter.Parser:
    """A parser for the language, one per thread (tree-sitter parsers are not thread-safe)."""
    import tree_sitter

    cache: dict[str, tree_sitter.Parser] = getattr(_parsers, "cache", None) or {}
    _parsers.cache = cache
    if language.name not in cache:
        cache[language.name] = tree_sitter.Parser(grammar_for(language))
    return cache[language.name]


_WORD = re.compile(r"#?[A-Za-z_][A-Za-z0-9_]*")


@cache
def grammar_reserved_words(language: LanguageSupport) -> frozenset[str]:
    """Words that can never be (the whole of) an identifier in the language.

    Read from the grammar itself: every anonymous node kind spelled as a word is a keyword, minus
    the language's soft (contextual) keywords, plus built-in type and literal words that the
    grammar models as named leaves (``int`` in C, ``None`` in Python).
    """
    grammar = grammar_for(language)
    words: set[str] = set()
    for kind_id in range(grammar.node_kind_count):
        kind = grammar.node_kind_for_id(kind_id)
        if (
            kind
            and not grammar.node_kind_is_named(kind_id)
            and grammar.node_kind_is_visible(kind_id)
            and _WORD.fullmatch(kind)
        ):
            words.add(kind)
    return frozenset((words - language.soft_keywords) | language.builtin_words)
