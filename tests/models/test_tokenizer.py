from __future__ import annotations

import pytest

from codeaudit.errors import CheckpointError
from codeaudit.lang import lex
from codeaudit.models.tokenizer import (
    HFTokenizer,
    VocabTokenizer,
    joined_text,
    tokenizer_from_state,
)

CODES = [
    'int get_user(char *name) { strcpy(buf, name); printf("%s", name); return 0; }',
    'int get_user_id(int id) { if (id < 0) return -1; printf("%d", id); return id; }',
    "void freeBuffer(char *buf) { free(buf); buf = NULL; }",
]
STREAMS = [lex(c, "c").tokens for c in CODES]


def test_vocabulary_has_specials_frequency_order_and_limits() -> None:
    vocab = VocabTokenizer.build(STREAMS, min_freq=2)
    itos = vocab.vocabulary()
    assert itos[:2] == ["<pad>", "<unk>"]
    assert "<str>" in itos  # every string literal is one normalised token
    assert "(" in itos and "get" in itos and "##_user" in itos
    assert "freeBuffer" not in itos and "free" in itos  # min_freq 2: 'free' x2, 'freeBuffer' split
    counts = [
        sum(p == t for s in STREAMS for tok in s for p in vocab.pieces(tok)) for t in itos[2:]
    ]
    assert counts == sorted(counts, reverse=True)
    small = VocabTokenizer.build(STREAMS, min_freq=1, max_size=10)
    assert small.vocab_size == 10
    assert VocabTokenizer.build(STREAMS).vocabulary() == vocab.vocabulary()  # deterministic


def test_vocab_encoding_maps_ids_back_to_code_tokens() -> None:
    vocab = VocabTokenizer.build(STREAMS, min_freq=1)
    tokens = STREAMS[0]
    enc = vocab.encode_tokens(tokens, 1000)
    pieces = [vocab.itos[i] for i in enc.ids]
    assert pieces[:4] == ["int", "get", "##_user", "("]
    assert enc.token_index[:4] == (0, 1, 1, 2)
    assert not enc.truncated and enc.n_unknown == 0
    short = vocab.encode_tokens(tokens, 5)
    assert len(short) == 5 and short.truncated
    unseen = vocab.encode_tokens(lex("int zzz_qqq;", "c").tokens, 100)
    assert unseen.n_unknown == 2  # zzz and ##_qqq


def test_vocab_state_round_trip_and_validation() -> None:
    vocab = VocabTokenizer.build(STREAMS, min_freq=1)
    again = tokenizer_from_state(vocab.to_state())
    assert again.vocabulary() == vocab.vocabulary()
    with pytest.raises(CheckpointError):
        tokenizer_from_state({"kind": "vocab", "itos": ["a", "b"]})
    with pytest.raises(CheckpointError):
        tokenizer_from_state({"kind": "martian"})


def test_bpe_alignment_and_round_trip() -> None:
    bpe = HFTokenizer.train_bpe((joined_text(s)[0] for s in STREAMS * 5), vocab_size=300)
    tokens = STREAMS[0]
    enc = bpe.encode_tokens(tokens, 512)
    assert enc.ids[0] == bpe.tok.bos_token_id and enc.ids[-1] == bpe.tok.eos_token_id
    assert enc.token_index[0] == -1 and enc.token_index[-1] == -1
    # every code token is covered, in order
    seen = [i for i in enc.token_index if i >= 0]
    assert seen == sorted(seen) and set(seen) == set(range(len(tokens)))
    vocab = bpe.vocabulary()
    for position, token in enumerate(tokens):
        pieces = [vocab[i] for i, t in zip(enc.ids, enc.token_index, strict=True) if t == position]
        assert "".join(pieces).replace("Ġ", "") == token.text
    short = bpe.encode_tokens(tokens, 8)
    assert len(short) == 8 and short.truncated
    again = tokenizer_from_state(bpe.to_state())
    assert again.encode_tokens(tokens, 512) == enc
