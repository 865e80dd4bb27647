"""Language support: the supported languages (one module each behind
:class:`~codeaudit.lang.support.LanguageSupport`), their tree-sitter grammars, the code-token lexer
and identifier splitting."""

from __future__ import annotations

from codeaudit.lang.languages import (
    LANGUAGES,
    LanguageSupport,
    get_language,
    get_parser,
    language_support,
    normalize_language,
    register_grammar_source,
    reserved_words,
    supported_languages,
)
from codeaudit.lang.lexer import CodeToken, IdentRole, LexResult, TokenKind, lex
from codeaudit.lang.subtokens import CONTINUATION, join_subtokens, split_identifier, subtokens

__all__ = [
    "CONTINUATION",
    "LANGUAGES",
    "CodeToken",
    "IdentRole",
    "LanguageSupport",
    "LexResult",
    "TokenKind",
    "get_language",
    "get_parser",
    "join_subtokens",
    "language_support",
    "lex",
    "normalize_language",
    "register_grammar_source",
    "reserved_words",
    "split_identifier",
    "subtokens",
    "supported_languages",
]
