"""Stage 1: the trigger vocabulary.

An injected backdoor trigger in code must survive as code: an identifier, a piece of one, or the
identifiers of a dead statement. So trigger inversion searches only the model-vocabulary entries
that can be (part of) an identifier in the code's language:

* special tokens (``<pad>``, ``<unk>``, ``<s>``, ``<str>``, ...) are out;
* a piece that starts a word (a bare vocabulary-tokenizer piece, a byte-level BPE piece with the
  leading-space marker ``Ġ``, a SentencePiece piece with ``▁``, a WordPiece piece without ``##``)
  must be a whole identifier start: ``[A-Za-z_][A-Za-z0-9_]*`` and not a reserved word of the
  language (keywords and literal words such as ``NULL`` or ``true``, read from the tree-sitter
  grammar by :func:`codeaudit.lang.languages.reserved_words`);
* a continuation piece (``##User`` in the vocabulary tokenizer, a BPE piece without ``Ġ``) must
  be made only of ``[A-Za-z0-9_]``: it extends an identifier, so a keyword spelling is fine there.

Numbers, punctuation, operators and string pieces are out. The public EliBadCode code drops
every word-start piece, so its triggers can only glue onto the token before them; here a trigger
may start a fresh identifier. If nothing is left the whole vocabulary (minus specials) is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from codeaudit.lang.languages import reserved_words
from codeaudit.lang.subtokens import CONTINUATION

_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"[A-Za-z0-9_]+")
WORD_START_MARKERS = ("Ġ", "▁")  # byte-level BPE (RoBERTa, CodeBERT), SentencePiece


@dataclass(frozen=True)
class TriggerVocab:
    """The token ids a trigger may use, and how the filter went."""

    ids: np.ndarray  # int64, sorted
    size_before: int
    size_after: int
    tokenizer: str  # "vocab" | "hf"
    languages: tuple[str, ...]
    fallback: bool = False  # nothing passed the filter: the whole vocabulary was used


def _special_strings(tokenizer: object) -> set[str]:
    specials: set[str] = {"<pad>", "<unk>", "<str>"}
    tok = getattr(tokenizer, "tok", None)
    if tok is not None:
        specials.update(str(t) for t in getattr(tok, "all_special_tokens", []))
    return specials


def classify_piece(piece: str, kind: str, reserved: frozenset[str]) -> bool:
    """Whether a vocabulary entry can be (part of) an identifier.

    ``kind`` is the tokenizer kind: "vocab" (``##`` marks a continuation; a bare piece starts a
    name) or "hf" (``Ġ``/``▁`` mark a word start; WordPiece vocabularies use ``##`` instead)."""
    if kind == "vocab":
        if piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION):
            return bool(_PART.fullmatch(piece[len(CONTINUATION) :]))
        return bool(_START.fullmatch(piece)) and piece not in reserved
    for marker in WORD_START_MARKERS:
        if piece.startswith(marker):
            word = piece[len(marker) :]
            return bool(_START.fullmatch(word)) and word not in reserved
    if piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION):
        return bool(_PART.fullmatch(piece[len(CONTINUATION) :]))
    return bool(_PART.fullmatch(piece))


def trigger_vocabulary(tokenizer: object, languages: Iterable[str]) -> TriggerVocab:
    """Filter the model tokenizer's vocabulary to identifier pieces of ``languages`` (a word
    reserved in any of them is out)."""
    langs = tuple(sorted(set(languages))) or ("c",)
    reserved: frozenset[str] = frozenset().union(*(reserved_words(lang) for lang in langs))
    itos: list[str] = tokenizer.vocabulary()  # type: ignore[attr-defined]
    kind = getattr(tokenizer, "kind", "vocab")
    specials = _special_strings(tokenizer)
    keep = [
        index
        for index, piece in enumerate(itos)
        if piece and piece not in specials and classify_piece(piece, kind, reserved)
    ]
    fallback = not keep
    if fallback:
        keep = [index for index, piece in enumerate(itos) if piece and piece not in specials]
    ids = np.asarray(keep, dtype=np.int64)
    return TriggerVocab(
        ids=ids,
        size_before=len(itos),
        size_after=len(ids),
        tokenizer=kind,
        languages=langs,
        fallback=fallback,
    )


def render_trigger(tokens: Iterable[str], kind: str) -> str:
    """The trigger as code text: continuation pieces glue onto the piece before them."""
    out = ""
    for piece in tokens:
        if kind == "vocab" or piece.startswith(CONTINUATION):
            if piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION):
                out += piece[len(CONTINUATION) :]
            else:
                out += (" " if out else "") + piece
            continue
        marker = next((m for m in WORD_START_MARKERS if piece.startswith(m)), None)
        if marker is not None:
            out += (" " if out else "") + piece[len(marker) :]
        else:
            out += piece
    return out


def normalised_piece(piece: str) -> str:
    """A trigger piece as a comparable word: word-start and continuation markers, surrounding
    underscores and case dropped (``Ġtesto``, ``##_init`` -> ``testo``, ``init``)."""
    for marker in (*WORD_START_MARKERS, CONTINUATION):
        if piece.startswith(marker):
            piece = piece[len(marker) :]
    return piece.strip("_").lower()
