"""The ``raw`` input format: CodeXGLUE's whitespace-collapsed source, encoded exactly, with every
piece mapped back to the code token it starts in."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.lang.lexer import lex
from codeaudit.models.input_format import collapse_whitespace
from codeaudit.models.tokenizer import HFTokenizer, lex_budget
from tests.models import foreign_models as fm

CODE = """int copy(char *dst, const char *src) {
    /* a comment that   the raw format keeps */
    strcpy(dst,src);   // and this one
    return   0;
}"""

pytestmark = pytest.mark.loading  # also run on the oldest transformers (scripts/test-oldest.sh)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> HFTokenizer:
    base = fm.make_base(tmp_path_factory.mktemp("raw") / "base")
    return HFTokenizer.from_directory(str(base), "raw")


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("ab c\t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000{;}"), max_size=60)
)
def test_collapse_is_pythons_split_and_join(code: str) -> None:
    collapsed = collapse_whitespace(code)
    assert collapsed.text == " ".join(code.split())
    assert not collapsed.cut
    for k, start in enumerate(collapsed.code_starts):  # every word points back to its source
        word = code.split()[k]
        assert code[start : start + len(word)] == word
        assert collapsed.text[collapsed.text_starts[k] :].startswith(word)


def test_collapse_stops_after_the_words_it_needs() -> None:
    code = "w " * 100_000
    collapsed = collapse_whitespace(code, max_words=10)
    assert collapsed.text == " ".join(["w"] * 10) and collapsed.cut
    assert not collapse_whitespace("a b", max_words=2).cut


def test_raw_ids_are_the_tokenizer_on_the_collapsed_source(tokenizer: HFTokenizer) -> None:
    tokens = lex(CODE, "c").tokens
    enc = tokenizer.encode_source(CODE, tokens, 128)
    expected = tokenizer.tok(" ".join(CODE.split()), truncation=True, max_length=128)["input_ids"]
    assert list(enc.ids) == expected
    assert not enc.truncated
    # comments are read (the tokens format drops them) and their pieces belong to no code
    # token; every other piece starts inside the code token it maps to
    collapsed = collapse_whitespace(CODE)
    text = collapsed.text
    comments = [(text.index("/*"), text.index("*/") + 2), (text.index("//"), text.index(" return"))]
    offsets = tokenizer.tok(text, truncation=True, max_length=128, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    seen_comment = seen_code = 0
    for index, (begin, end) in zip(enc.token_index, offsets, strict=True):
        if end <= begin:  # <s>, </s>
            assert index == -1
            continue
        while text[begin] == " ":
            begin += 1
        if any(a <= begin < b for a, b in comments):
            assert index == -1, text[begin:end]
            seen_comment += 1
        else:
            token = tokens[index]
            source = collapsed.source_offset(begin)
            assert index >= 0 and token.start <= source < token.end
            assert CODE[source : source + end - begin] == text[begin:end]
            seen_code += 1
    assert seen_comment > 5 and seen_code > 10
    tokens_format = tokenizer.with_input_format("tokens").encode_source(CODE, tokens, 128)
    assert tokens_format.ids != enc.ids


def test_raw_truncation_is_exact_and_costs_what_is_read(tokenizer: HFTokenizer) -> None:
    long = "int f(void) {\n" + "  x = x + 1;\n" * 5000 + "}\n"
    lexed = lex(long, "c", max_tokens=lex_budget(40))
    enc = tokenizer.encode_source(long, lexed.tokens, 40, lex_truncated=lexed.truncated)
    whole = tokenizer.tok(" ".join(long.split()), truncation=True, max_length=40)["input_ids"]
    assert list(enc.ids) == whole and enc.truncated and len(enc.ids) == 40
    short = tokenizer.encode("int f(void) { return 1; }", "c", 40)
    assert not short.truncated


def test_input_format_travels_with_the_tokenizer_state(tokenizer: HFTokenizer) -> None:
    state = tokenizer.to_state()
    assert state["input_format"] == "raw"
    again = HFTokenizer.from_state(state)
    assert again.input_format == "raw"
    assert again.encode(CODE, "c", 128).ids == tokenizer.encode(CODE, "c", 128).ids
    legacy = {k: v for k, v in state.items() if k != "input_format"}  # before it was recorded
    assert HFTokenizer.from_state(legacy).input_format == "tokens"


def test_unknown_recorded_format_is_refused(tokenizer: HFTokenizer, tmp_path: Path) -> None:
    from codeaudit.errors import CheckpointError

    with pytest.raises(CheckpointError, match="unknown input format"):
        HFTokenizer.from_state({**tokenizer.to_state(), "input_format": "ast"})
