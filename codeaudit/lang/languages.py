"""The registry of supported languages: which languages codeaudit can lex, rewrite and poison.

Each language is one module of this package holding a
:class:`~codeaudit.lang.support.LanguageSupport` subclass (its names, its tree-sitter grammar
package, and everything the rewrites and triggers need to know), listed once in
:data:`LANGUAGES` below. Adding a language is that module and that entry;
``tests/lang/test_language_support.py`` then checks the new language like every other.

Grammars come from the language's official package by default; another source (a vendored build,
a different package) can be added with :func:`register_grammar_source` without touching the lexer
(see :mod:`codeaudit.lang.grammar`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codeaudit.errors import LanguageError
from codeaudit.lang.c import CSupport
from codeaudit.lang.cpp import CppSupport
from codeaudit.lang.grammar import (
    GrammarSource,
    grammar_for,
    grammar_reserved_words,
    parser_for,
    register_grammar_source,
)
from codeaudit.lang.java import JavaSupport
from codeaudit.lang.python import PythonSupport
from codeaudit.lang.support import LanguageSupport

if TYPE_CHECKING:
    import tree_sitter

__all__ = [
    "LANGUAGES",
    "GrammarSource",
    "LanguageSupport",
    "get_language",
    "get_parser",
    "language_support",
    "normalize_language",
    "register_grammar_source",
    "reserved_words",
    "supported_languages",
]

#: Every supported language by canonical name, in this order (the order of
#: :func:`supported_languages`).
LANGUAGES: dict[str, LanguageSupport] = {
    support.name: support
    for support in (
        CSupport(),
        CppSupport(),
        JavaSupport(),
        PythonSupport(),
    )
}

_ALIASES: dict[str, str] = {
    alias: support.name
    for support in LANGUAGES.values()
    for alias in (support.name, *support.aliases)
}


def supported_languages() -> tuple[str, ...]:
    return tuple(LANGUAGES)


def normalize_language(name: str) -> str:
    """Canonical name for a user-given one (``C++`` -> ``cpp``); LanguageError if unknown."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        text = str(name)
        quoted = repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} chars)"
        raise LanguageError(
            f"unsupported language {quoted} (supported: {', '.join(supported_languages())})"
        )
    return _ALIASES[key]


def language_support(name: str) -> LanguageSupport:
    """What codeaudit knows about a language, by any of its names; LanguageError if unknown."""
    return LANGUAGES[normalize_language(name)]


def get_language(name: str) -> tree_sitter.Language:
    """The tree-sitter Language for a supported language name."""
    return grammar_for(language_support(name))


def get_parser(name: str) -> tree_sitter.Parser:
    """A parser for the language, one per thread (tree-sitter parsers are not thread-safe)."""
    return parser_for(language_support(name))


def reserved_words(name: str) -> frozenset[str]:
    """Words that can never be (the whole of) an identifier in the language.

    Read from the grammar itself: every anonymous node kind spelled as a word is a keyword, minus
    the language's soft (contextual) keywords, plus built-in type and literal words that the
    grammar models as named leaves (``int`` in C, ``None`` in Python).
    """
    return grammar_reserved_words(language_support(name))
