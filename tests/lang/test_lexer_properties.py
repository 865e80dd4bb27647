"""Property-based tests of the lexer and identifier splitting: any text, in each of the four
languages, lexes without error into tokens that are exactly the source text at their spans; a
token limit gives the first tokens of a full lex; sub-token splitting is reversible."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.lang import lexer
from codeaudit.lang.languages import reserved_words, supported_languages
from codeaudit.lang.lexer import TokenKind, lex
from codeaudit.lang.subtokens import join_subtokens, split_identifier, subtokens

LANGS = supported_languages()
FAST = settings(max_examples=80, deadline=None)
# Code-like text: fragments of real syntax mixed with arbitrary characters, so that inputs reach
# deep into the grammars (error recovery, literals, comments) rather than stopping at byte one.
FRAGMENTS = st.sampled_from(
    [
        "int ",
        "char *",
        "f(",
        ")",
        "{",
        "}",
        ";",
        "\n",
        " ",
        "\t",
        "x",
        "y_1",
        "getUserName",
        '"str\\"ing"',
        "'c'",
        "/* c */",
        "// line\n",
        "# py\n",
        "#define M(a) a\n",
        "def g(a):\n    return a\n",
        "class A { void m() {} }",
        'R"(raw)"',
        "'''doc'''",
        "<<",
        ">>=",
        "->",
        "::",
        "0x1F",
        "1.5e-3",
        "@Override ",
        "lambda: 0",
        "\\\n",
        '"',
        "'",
        "/*",
        "*/",
        "é",
        "中",
        "\U0001f600",
        "\u202e",
        "\x00",
        "\r\n",
        "\x0c",
    ]
)
CODE = st.lists(FRAGMENTS | st.text(st.characters(codec="utf-8"), max_size=4), max_size=40).map(
    "".join
)


@FAST
@given(code=CODE, lang=st.sampled_from(LANGS))
def test_any_text_lexes_into_tokens_that_are_the_source_at_their_spans(code: str, lang: str):
    result = lex(code, lang)
    reserved = reserved_words(lang)
    end = 0
    for token in result.tokens:
        assert token.text == code[token.start : token.end]
        assert token.text and token.start >= end  # non-empty, in order, not overlapping
        end = token.end
        assert token.line == code.count("\n", 0, token.start) + 1
        assert isinstance(token.kind, TokenKind)
        if token.is_identifier:
            assert join_subtokens(token.subtokens()) == [token.text]
            # never a reserved word, not even where error recovery labels one an identifier
            assert token.text not in reserved


@FAST
@given(code=CODE, lang=st.sampled_from(LANGS), limit=st.integers(0, 30))
def test_a_token_limit_gives_the_first_tokens_of_a_full_lex(code: str, lang: str, limit: int):
    full = lex(code, lang).tokens
    cut = lex(code, lang, max_tokens=limit)
    assert cut.tokens == full[:limit]
    if len(full) > limit:
        assert cut.truncated


@settings(max_examples=15, deadline=None)
@given(
    body=st.lists(st.sampled_from(["  a = a + b[1] * 3;\n", '  /* note */ f(a, "s");\n'])),
    lang=st.sampled_from(["c", "cpp", "java"]),
)
def test_long_sources_lexed_by_prefix_give_the_same_tokens(body: list[str], lang: str) -> None:
    """The prefix path for sources over PREFIX_MIN_CHARS (shrunk here so small inputs take it)
    gives the tokens a full lex gives: text, span and kind."""
    code = "int f(int a, int b) {\n" + "".join(body) * 8 + "  return a;\n}\n"
    full = lex(code, lang).tokens
    for limit in (5, 40):
        with mock.patch.object(lexer, "PREFIX_MIN_CHARS", 256):
            cut = lex(code, lang, max_tokens=limit).tokens
        assert [(t.text, t.start, t.end, t.kind) for t in cut] == [
            (t.text, t.start, t.end, t.kind) for t in full[:limit]
        ]


IDENTIFIER = st.text(
    st.characters(categories=["Lu", "Ll", "Lt", "Lo", "Nd"]) | st.just("_"), min_size=1, max_size=24
)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(IDENTIFIER, max_size=6))
def test_sub_token_splitting_is_reversible(names: list[str]) -> None:
    for name in names:
        assert "".join(split_identifier(name)) == name
        assert join_subtokens(subtokens(name)) == [name]
    flat = [piece for name in names for piece in subtokens(name)]
    assert join_subtokens(flat) == names
