"""The per-run encoding cache and the parallel encoder give the encodings of the plain path."""

from __future__ import annotations

import pytest

from codeaudit.data.synthetic import generate
from codeaudit.lang.lexer import lex
from codeaudit.models import encoding as enc_mod
from codeaudit.models.encoding import (
    EncodingCache,
    cache_key,
    current_run,
    encode_many,
    encoding_run,
    tokenizer_fingerprint,
)
from codeaudit.models.tokenizer import VocabTokenizer


def _items(n: int = 40) -> list[tuple[str, str]]:
    return [(r["func"], "c") for r in generate(n, 5)]


def _tokenizer(items: list[tuple[str, str]], max_size: int = 300) -> VocabTokenizer:
    return VocabTokenizer.build([lex(c, lang).tokens for c, lang in items], max_size=max_size)


def test_outside_a_run_nothing_is_cached() -> None:
    items = _items(6)
    tok = _tokenizer(items)
    assert current_run() is None
    assert encode_many(tok, items, 64) == [tok.encode(c, lang, 64) for c, lang in items]


def test_a_run_encodes_each_function_once_with_the_same_result() -> None:
    items = _items()
    tok = _tokenizer(items)
    plain = [tok.encode(c, lang, 128) for c, lang in items]
    with encoding_run() as run:
        first = encode_many(tok, items + items[:5], 128)
        assert run.cache.misses == len(items) + 5 and len(run.cache) == len(items)
        second = encode_many(tok, list(reversed(items)), 128)
        assert run.cache.hits == len(items)
    assert first == plain + plain[:5]
    assert second == list(reversed(plain))
    assert current_run() is None


def test_the_key_separates_tokenizers_budgets_and_languages() -> None:
    items = _items()
    small, large = _tokenizer(items, 40), _tokenizer(items, 300)
    assert tokenizer_fingerprint(small) != tokenizer_fingerprint(large)
    assert tokenizer_fingerprint(small) == tokenizer_fingerprint(_tokenizer(items, 40))
    with encoding_run():
        for tok in (small, large):
            for max_len in (16, 128):
                got = encode_many(tok, items[:8], max_len)
                assert got == [tok.encode(c, lang, max_len) for c, lang in items[:8]]
    code = items[0][0]
    fp = tokenizer_fingerprint(small)
    assert cache_key(fp, 16, "c", code) != cache_key(fp, 16, "cpp", code)
    assert cache_key(fp, 16, "c", code) != cache_key(fp, 17, "c", code)
    assert cache_key(fp, 16, "c", code) != cache_key(fp, 16, "c", code + " ")


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    items = _items(10)
    tok = _tokenizer(items)
    cache = EncodingCache(max_entries=3)
    with encoding_run(cache=cache):
        encode_many(tok, items[:3], 32)
        encode_many(tok, items[:1], 32)  # item 0 is now the most recent
        encode_many(tok, items[3:4], 32)  # drops item 1
        assert len(cache) == 3
        hits = cache.hits
        encode_many(tok, [items[0], items[2], items[3]], 32)
        assert cache.hits == hits + 3
        encode_many(tok, items[1:2], 32)
        assert cache.hits == hits + 3


def test_worker_processes_give_the_serial_encodings_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = _items(60)
    tok = _tokenizer(items)
    monkeypatch.setattr(enc_mod, "PARALLEL_MIN", 10)
    monkeypatch.setattr(enc_mod, "CHUNK_MIN", 7)
    with encoding_run(workers=2) as run:
        got = encode_many(tok, items, 96)
        assert run._pool is not None
    assert got == [tok.encode(c, lang, 96) for c, lang in items]
