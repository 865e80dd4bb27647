"""Property-based tests of the model tokenizers: any text in any supported language encodes
within max_len ids, every id maps back to a code token, and a shorter limit gives a prefix of a
longer one (so truncation is exact and counted)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.errors import ModelError
from codeaudit.lang.languages import supported_languages
from codeaudit.lang.lexer import lex
from codeaudit.models.tokenizer import HFTokenizer, ModelTokenizer, VocabTokenizer, joined_text
from tests.conftest import planted_records
from tests.lang.test_lexer_properties import CODE

LANGS = supported_languages()
CORPUS = [r["func"] for r in planted_records(40)] + [
    "def f(x):\n    return [y for y in x]\n",
    "class A { int m(int[] a) { return a.length; } }",
]


@cache
def tokenizers() -> dict[str, ModelTokenizer]:
    streams = [lex(code, "c").tokens for code in CORPUS]
    return {
        "vocab": VocabTokenizer.build(streams, min_freq=1, max_size=200),
        "bpe": HFTokenizer.train_bpe((joined_text(s)[0] for s in streams), vocab_size=300),
    }


@settings(max_examples=80, deadline=None)
@given(
    code=CODE,
    lang=st.sampled_from(LANGS),
    max_len=st.integers(1, 60),
    kind=st.sampled_from(["vocab", "bpe"]),
)
def test_encode_respects_max_len_and_truncates_exactly(
    code: str, lang: str, max_len: int, kind: str
) -> None:
    tok = tokenizers()[kind]
    if kind == "bpe" and max_len <= 2:  # <s> and </s> alone would fill it
        with pytest.raises(ModelError, match="leaves no room for code"):
            tok.encode(code, lang, max_len)
        return
    enc = tok.encode(code, lang, max_len)
    full = tok.encode(code, lang, 100_000)
    assert len(enc.ids) <= max_len
    assert len(enc.token_index) == len(enc.ids)
    assert all(0 <= i < tok.vocab_size for i in enc.ids)
    n_tokens = len(lex(code, lang).tokens)
    assert all(-1 <= t < n_tokens for t in enc.token_index)
    content = [i for i, t in zip(enc.ids, enc.token_index, strict=True) if t >= 0]
    full_content = [i for i, t in zip(full.ids, full.token_index, strict=True) if t >= 0]
    assert content == full_content[: len(content)]  # a prefix of the untruncated encoding
    assert not full.truncated
    assert enc.truncated == (len(content) < len(full_content))
    if kind == "vocab":
        assert enc.ids == full.ids[:max_len]
        assert len(content) == min(max_len, len(full_content))
