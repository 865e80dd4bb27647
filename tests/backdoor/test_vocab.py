"""The trigger vocabulary filter, per language and tokenizer kind."""

from __future__ import annotations

import pytest

from codeaudit.backdoor.vocab import classify_piece, render_trigger, trigger_vocabulary
from codeaudit.lang.languages import reserved_words
from codeaudit.models.tokenizer import HFTokenizer, VocabTokenizer

PIECES = ["<pad>", "<unk>", "<str>", "buf", "##_len", "##User", "rb", "##2", "42", "(", "->", ";"]
KEYWORDS = {
    "c": ["int", "while", "sizeof", "NULL", "return"],
    "cpp": ["class", "nullptr", "template", "this"],
    "java": ["public", "null", "synchronized", "boolean"],
    "python": ["def", "lambda", "None", "yield"],
}


@pytest.mark.parametrize("lang", ["c", "cpp", "java", "python"])
def test_vocab_tokenizer_keeps_identifier_pieces_only(lang: str) -> None:
    itos = [*PIECES, *KEYWORDS[lang], "##int"]
    vocab = trigger_vocabulary(VocabTokenizer(itos), [lang])
    kept = {itos[i] for i in vocab.ids}
    assert kept == {"buf", "##_len", "##User", "rb", "##2", "##int"}  # keyword as continuation ok
    assert vocab.size_before == len(itos) and vocab.size_after == len(kept)
    assert not vocab.fallback


@pytest.mark.parametrize("lang", ["c", "cpp", "java", "python"])
def test_bpe_word_start_pieces(lang: str) -> None:
    reserved = reserved_words(lang)
    keyword = KEYWORDS[lang][0]
    assert classify_piece("Ġbuf", "hf", reserved)  # starts a fresh identifier
    assert not classify_piece(f"Ġ{keyword}", "hf", reserved)  # a keyword word is never a name
    assert classify_piece(keyword, "hf", reserved)  # ... but may continue one (print, intern)
    assert classify_piece("_len", "hf", reserved) and classify_piece("2", "hf", reserved)
    assert not classify_piece("Ġ42", "hf", reserved)  # a number cannot start a name
    assert not classify_piece("Ġ(", "hf", reserved) and not classify_piece("->", "hf", reserved)
    assert not classify_piece("Ġ", "hf", reserved)


def test_trained_bpe_filter() -> None:
    texts = ["int main ( ) { char buf [ 16 ] ; return buf_len + 42 ; }"] * 20
    tok = HFTokenizer.train_bpe(texts, vocab_size=400, min_freq=1)
    vocab = trigger_vocabulary(tok, ["c"])
    itos = tok.vocabulary()
    kept = {itos[i] for i in vocab.ids}
    assert "Ġbuf" in kept and "Ġint" not in kept and "Ġreturn" not in kept
    assert not kept & {"<s>", "</s>", "<pad>", "<unk>", "<mask>", "Ġ(", "Ġ;", "Ġ42"}
    assert vocab.size_after < vocab.size_before


def test_c_keywords_out_of_cpp_union() -> None:
    tok = VocabTokenizer(["<pad>", "<unk>", "class", "buf"])
    assert {tok.itos[i] for i in trigger_vocabulary(tok, ["c"]).ids} == {"class", "buf"}
    assert {tok.itos[i] for i in trigger_vocabulary(tok, ["c", "cpp"]).ids} == {"buf"}


def test_fallback_when_nothing_passes() -> None:
    vocab = trigger_vocabulary(VocabTokenizer(["<pad>", "<unk>", "(", ")"]), ["c"])
    assert vocab.fallback and vocab.size_after == 2


def test_render_trigger() -> None:
    assert render_trigger(["rb", "##_trig", "k"], "vocab") == "rb_trig k"
    assert render_trigger(["Ġrb", "_", "trig", "Ġk"], "hf") == "rb_trig k"
