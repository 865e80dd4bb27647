"""Which programming languages codeaudit can lex, and where their tree-sitter grammars come from.

This is the one place that knows how a grammar is obtained. The default source is the official
per-language grammar packages (``tree-sitter-c``, ``tree-sitter-cpp``, ``tree-sitter-java``,
``tree-sitter-python``), each exposing ``language()``; another source (a vendored build, a
different package) can be added with :func:`register_grammar_source` without touching the lexer.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from codeaudit.errors import LanguageError

if TYPE_CHECKING:
    import tree_sitter


@dataclass(frozen=True)
class LanguageSpec:
    """A supported language: canonical name, names users may give it, its grammar package."""

    name: str
    aliases: tuple[str, ...]
    package: str
    # Words the grammar spells as keywords but that may still name things in ordinary code.
    soft_keywords: frozenset[str] = frozenset()
    # Built-in type names and literal words that the grammar models as named leaves.
    builtin_words: frozenset[str] = frozenset()


_C_TYPES = frozenset(
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

LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec("c", ("c", "h"), "tree_sitter_c", builtin_words=_C_TYPES),
        LanguageSpec(
            "cpp",
            ("cpp", "c++", "cc", "cxx", "hpp", "hh", "hxx"),
            "tree_sitter_cpp",
            soft_keywords=frozenset({"final", "override", "concept", "requires"}),
            builtin_words=_C_TYPES | {"this", "nullptr", "auto"},
        ),
        LanguageSpec(
            "java",
            ("java",),
            "tree_sitter_java",
            soft_keywords=frozenset(
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
            ),
            builtin_words=frozenset({"boolean", "void", "true", "false", "null", "this", "super"}),
        ),
        LanguageSpec(
            "python",
            ("python", "py", "python3"),
            "tree_sitter_python",
            soft_keywords=frozenset({"_", "__future__", "case", "exec", "match", "print", "type"}),
            builtin_words=frozenset({"True", "False", "None"}),
        ),
    )
}

_ALIASES: dict[str, str] = {
    alias: spec.name for spec in LANGUAGES.values() for alias in (spec.name, *spec.aliases)
}

GrammarSource = Callable[[LanguageSpec], "object | None"]
"""Returns a tree-sitter language capsule (or ``tree_sitter.Language``) for a spec, or None."""


def _package_source(spec: LanguageSpec) -> object | None:
    try:
        module = importlib.import_module(spec.package)
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
        get_language.cache_clear()


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


@cache
def get_language(name: str) -> tree_sitter.Language:
    """The tree-sitter Language for a supported language name."""
    import tree_sitter

    spec = LANGUAGES[normalize_language(name)]
    for source in _SOURCES:
        capsule = source(spec)
        if capsule is None:
            continue
        return (
            capsule if isinstance(capsule, tree_sitter.Language) else tree_sitter.Language(capsule)
        )
    package = spec.package.replace("_", "-")
    raise LanguageError(f"no tree-sitter grammar for {spec.name}: install the {package} package")


_parsers = threading.local()


def get_parser(name: str) -> tree_sitter.Parser:
    """A parser for the language, one per thread (tree-sitter parsers are not thread-safe)."""
    import tree_sitter

    canonical = normalize_language(name)
    cache: dict[str, tree_sitter.Parser] = getattr(_parsers, "cache", None) or {}
    _parsers.cache = cache
    if canonical not in cache:
        cache[canonical] = tree_sitter.Parser(get_language(canonical))
    return cache[canonical]


_WORD = re.compile(r"#?[A-Za-z_][A-Za-z0-9_]*")


@cache
def reserved_words(name: str) -> frozenset[str]:
    """Words that can never be (the whole of) an identifier in the language.

    Read from the grammar itself: every anonymous node kind spelled as a word is a keyword, minus
    the language's soft (contextual) keywords, plus built-in type and literal words that the
    grammar models as named leaves (``int`` in C, ``None`` in Python).
    """
    spec = LANGUAGES[normalize_language(name)]
    language = get_language(spec.name)
    words: set[str] = set()
    for kind_id in range(language.node_kind_count):
        kind = language.node_kind_for_id(kind_id)
        if (
            kind
            and not language.node_kind_is_named(kind_id)
            and language.node_kind_is_visible(kind_id)
            and _WORD.fullmatch(kind)
        ):
            words.add(kind)
    return frozenset((words - spec.soft_keywords) | spec.builtin_words)
