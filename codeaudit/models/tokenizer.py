"""Model tokenizers: from code tokens to the ids a model reads.

Two kinds share one interface:

* :class:`VocabTokenizer` (the RNN models): identifiers are split into sub-tokens
  (``get ##User ##Name``), string literals are normalised to ``<str>`` (their content is rarely
  informative and would flood the vocabulary with one-off entries, which also marks
  non-members), everything else is kept verbatim; a vocabulary built from the training data with
  ``<pad>``/``<unk>``, a minimum frequency and a maximum size.
* :class:`HFTokenizer` (the transformer): a Hugging Face fast tokenizer, either a byte-level BPE
  trained here on the training corpus or a pretrained tokenizer from a local directory. It reads
  the text of the model's input format (:mod:`codeaudit.models.input_format`): the code tokens
  joined by single spaces (``tokens``: comments dropped, everything else verbatim), or the
  whitespace-collapsed source (``raw``: comments kept).

Both return an :class:`Encoding` that maps every id back to the code token it came from, which
is what trigger insertion and position selection need.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from codeaudit.errors import CheckpointError, ModelError
from codeaudit.lang.languages import normalize_language
from codeaudit.lang.lexer import _STRING_TYPES, PREFIX_MIN_CHARS, CodeToken, TokenKind, lex, lex_raw
from codeaudit.lang.subtokens import subtokens
from codeaudit.models.input_format import RAW, TOKENS, check_input_format, collapse_whitespace

PAD = "<pad>"
UNK = "<unk>"
STR = "<str>"


def lex_budget(max_len: int) -> int:
    """Code tokens to lex for an encoding of ``max_len`` ids: every token gives at least one id
    (a sub-token, ``<str>``, or a BPE piece), so one more than ``max_len`` shows truncation."""
    return max(int(max_len), 0) + 1


@dataclass(frozen=True, slots=True)
class Encoding:
    """Ids of one sample, each with the index of the code token it came from (-1: special)."""

    ids: tuple[int, ...]
    token_index: tuple[int, ...]
    n_code_tokens: int
    truncated: bool
    n_unknown: int

    def __len__(self) -> int:
        return len(self.ids)


class ModelTokenizer(ABC):
    """What every model tokenizer offers; ``to_state`` holds only plain types and strings."""

    kind: ClassVar[str]
    input_format: str = TOKENS

    @property
    @abstractmethod
    def pad_id(self) -> int: ...

    @property
    @abstractmethod
    def unk_id(self) -> int | None: ...

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    def id_bound(self) -> int:
        """One more than the largest id the tokenizer can produce (the embedding rows needed)."""
        return self.vocab_size

    @abstractmethod
    def vocabulary(self) -> list[str]:
        """Token strings by id."""

    @abstractmethod
    def encode_tokens(self, tokens: Sequence[CodeToken], max_len: int) -> Encoding:
        """Encode lexed code, truncating to ``max_len`` ids (special tokens included)."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]: ...

    def with_input_format(self, input_format: str) -> ModelTokenizer:
        """This tokenizer reading ``input_format`` text (only ``tokens`` unless overridden)."""
        if input_format != self.input_format:
            raise ModelError(
                f"input format {input_format!r} is not available for this model: it reads "
                f"{self.input_format!r} (codeaudit's RNN models read code tokens only)"
            )
        return self

    def encode_source(
        self,
        code: str,
        tokens: Sequence[CodeToken],
        max_len: int,
        *,
        lex_truncated: bool = False,
    ) -> Encoding:
        """Encode one function from its source and its lexed tokens (at least the first
        ``lex_budget(max_len)``; ``lex_truncated``: the lexer stopped before the end)."""
        encoding = self.encode_tokens(tokens, max_len)
        if lex_truncated and not encoding.truncated:
            encoding = replace(encoding, truncated=True)
        return encoding

    def encode(self, code: str, lang: str, max_len: int) -> Encoding:
        """Lex and encode. Every code token gives at least one id, so lexing stops after
        ``max_len + 1`` tokens (enough to know the encoding is truncated): an extremely long
        function costs what its first tokens cost, and encodes exactly as if lexed whole."""
        lexed = lex(code, lang, max_tokens=lex_budget(max_len), roles=False)
        return self.encode_source(code, lexed.tokens, max_len, lex_truncated=lexed.truncated)


class VocabTokenizer(ModelTokenizer):
    kind = "vocab"
    SPECIALS = (PAD, UNK)

    def __init__(self, itos: Sequence[str]) -> None:
        if list(itos[: len(self.SPECIALS)]) != list(self.SPECIALS):
            raise CheckpointError("vocabulary must start with <pad>, <unk>")
        if len(set(itos)) != len(itos):
            raise CheckpointError("vocabulary has duplicate entries")
        self.itos = list(itos)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        self._pieces: dict[tuple[int, str], tuple[int, ...]] = {}

    @staticmethod
    def pieces(token: CodeToken) -> list[str]:
        if token.is_string:
            return [STR]
        return token.subtokens()

    @classmethod
    def build(
        cls,
        token_streams: Iterable[Sequence[CodeToken]],
        *,
        min_freq: int = 2,
        max_size: int = 20000,
    ) -> VocabTokenizer:
        """Vocabulary of the pieces seen at least ``min_freq`` times, most frequent first."""
        if min_freq < 1:
            raise ModelError("min_freq must be at least 1")
        if max_size <= len(cls.SPECIALS):
            raise ModelError(f"max vocabulary size must exceed {len(cls.SPECIALS)}")
        counts: Counter[str] = Counter()
        for tokens in token_streams:
            for token in tokens:
                counts.update(cls.pieces(token))
        for special in cls.SPECIALS:
            counts.pop(special, None)
        ranked = sorted((c, t) for t, c in counts.items() if c >= min_freq)
        ranked.sort(key=lambda item: (-item[0], item[1]))
        keep = [token for _, token in ranked[: max_size - len(cls.SPECIALS)]]
        return cls([*cls.SPECIALS, *keep])

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def vocabulary(self) -> list[str]:
        return list(self.itos)

    def encode_tokens(self, tokens: Sequence[CodeToken], max_len: int) -> Encoding:
        ids: list[int] = []
        index: list[int] = []
        unknown = 0
        truncated = False
        for position, token in enumerate(tokens):
            for piece in self.pieces(token):
                if len(ids) >= max_len:
                    truncated = True
                    break
                token_id = self.stoi.get(piece, 1)
                unknown += token_id == 1
                ids.append(token_id)
                index.append(position)
            if truncated:
                break
        return Encoding(tuple(ids), tuple(index), len(tokens), truncated, unknown)

    # Ids of a token's pieces by (category, text), at most PIECE_CACHE entries (then cleared).
    PIECE_CACHE = 1 << 18

    def _piece_ids(self, category: int, text: str) -> tuple[int, ...]:
        key = (category, text)
        ids = self._pieces.get(key)
        if ids is None:
            if category == 0:
                pieces = [STR]
            elif category == 1:
                pieces = subtokens(text)
            else:
                pieces = [text]
            if len(self._pieces) >= self.PIECE_CACHE:
                self._pieces.clear()
            ids = self._pieces[key] = tuple(self.stoi.get(piece, 1) for piece in pieces)
        return ids

    def encode(self, code: str, lang: str, max_len: int) -> Encoding:
        """As :meth:`ModelTokenizer.encode` (the same encoding, id for id), straight from the
        lexer's plain tuples: no token objects, no identifier roles, and the ids of each distinct
        token text looked up once."""
        cls = type(self)
        if (
            len(code) > PREFIX_MIN_CHARS  # parsed a prefix at a time: the general path
            or cls.encode_tokens is not VocabTokenizer.encode_tokens
            or cls.pieces is not VocabTokenizer.pieces
        ):
            return super().encode(code, lang, max_len)
        raw = lex_raw(code, normalize_language(lang), lex_budget(max_len), roles=False)
        ids: list[int] = []
        index: list[int] = []
        truncated = False
        known = self._pieces.get
        piece_ids = self._piece_ids
        literal = TokenKind.LITERAL
        identifier = TokenKind.IDENTIFIER
        string = piece_ids(0, "")
        room = max_len
        for position, token in enumerate(raw.tokens):
            kind = token[1]
            if kind is literal and token[5] in _STRING_TYPES:
                pieces = string
            else:
                key = (1 if kind is identifier else 2, token[0])
                pieces = known(key) or piece_ids(*key)
            count = len(pieces)
            if count > room:
                truncated = True
                if room > 0:
                    ids.extend(pieces[:room])
                    index.extend([position] * room)
                break
            room -= count
            if count == 1:
                ids.append(pieces[0])
                index.append(position)
            else:
                ids.extend(pieces)
                index.extend([position] * count)
        unknown = ids.count(1)
        return Encoding(
            tuple(ids), tuple(index), len(raw.tokens), truncated or raw.truncated, unknown
        )

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "itos": list(self.itos)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> VocabTokenizer:
        itos = state.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise CheckpointError("tokenizer vocabulary is not a list of strings")
        return cls(itos)


TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
BPE_SPECIALS = {
    "bos_token": "<s>",
    "pad_token": "<pad>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
    "cls_token": "<s>",
    "sep_token": "</s>",
}


# Budgets per function for an untrusted Hugging Face tokenizer (its normaliser is a program the
# file chooses): the text encoded is at most MAX_CHARS_PER_ID characters per id of max_len (a
# piece of more characters is unheard of), the normaliser may lengthen text at most
# MAX_NORMALISER_EXPANSION times (worst case read from its configuration: a ``Replace`` can
# lengthen each match to its content), and a probe text may give at most MAX_IDS_PER_CHAR ids a
# character (byte-level BPE: at most the 4 UTF-8 bytes of a character).
MAX_CHARS_PER_ID = 64
MAX_NORMALISER_EXPANSION = 8
MAX_IDS_PER_CHAR = 4
_PROBE = (
    "int main(int argc, char **argv) { if (argv[1] != NULL) return strlen(argv[1]) * 2; }\n\t"
    + "".join(chr(c) for c in range(32, 127))
    + "".join(chr(c) for c in range(0xA0, 0x3000, 37))
)


def _expansion(node: Any, depth: int = 0) -> float:
    """Worst-case factor by which a normaliser configuration (tokenizer.json) lengthens text."""
    if depth > 32:
        return math.inf
    if not isinstance(node, dict):
        return 1.0
    kind = node.get("type")
    if kind == "Sequence":
        factor = 1.0
        for child in node.get("normalizers") or []:
            factor *= _expansion(child, depth + 1)
        return factor
    if kind == "Replace":
        content = node.get("content")
        pattern = node.get("pattern")
        size = len(content) if isinstance(content, str) else 0
        literal = isinstance(pattern, dict) and isinstance(pattern.get("String"), str)
        if literal and pattern["String"]:
            return max(1.0, size / len(pattern["String"]))
        return 1.0 + size  # a regex may match the empty string: content between characters
    if kind == "Prepend":
        return 2.0  # the prepended text at most once more than the text (a 1-character input)
    if kind == "BertNormalizer":
        return 3.0  # spaces around CJK characters
    return 1.0


def check_expansion(tok: Any) -> None:
    """Refuse a tokenizer whose normaliser can lengthen text more than
    :data:`MAX_NORMALISER_EXPANSION` times, or that gives more than :data:`MAX_IDS_PER_CHAR` ids
    a character of a probe text (ModelError)."""
    import json

    backend = tok.backend_tokenizer
    try:
        config = json.loads(backend.to_str())
    except ValueError:
        config = {}
    factor = _expansion(config.get("normalizer"))
    if factor > MAX_NORMALISER_EXPANSION:
        raise ModelError(
            f"the tokenizer's normaliser can lengthen text {factor:g} times (more than "
            f"{MAX_NORMALISER_EXPANSION}): refused"
        )
    if backend.normalizer is not None:
        grown = len(backend.normalizer.normalize_str(_PROBE))
        if grown > MAX_NORMALISER_EXPANSION * len(_PROBE):
            raise ModelError(
                f"the tokenizer's normaliser lengthens a probe text {grown / len(_PROBE):.1f} "
                f"times (more than {MAX_NORMALISER_EXPANSION}): refused"
            )
    ids = tok(_PROBE, add_special_tokens=False)["input_ids"]
    if len(ids) > MAX_IDS_PER_CHAR * len(_PROBE):
        raise ModelError(
            f"the tokenizer gives {len(ids) / len(_PROBE):.1f} ids a character of a probe text "
            f"(more than {MAX_IDS_PER_CHAR}): refused"
        )


def bounded_text(text: str, max_len: int) -> tuple[str, bool]:
    """At most ``MAX_CHARS_PER_ID * max_len`` characters of ``text`` (and whether it was cut)."""
    limit = MAX_CHARS_PER_ID * max(int(max_len), 1)
    return (text[:limit], True) if len(text) > limit else (text, False)


def joined_text(tokens: Sequence[CodeToken]) -> tuple[str, list[int]]:
    """Code tokens joined by single spaces, and where each token starts in that text."""
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for token in tokens:
        starts.append(pos)
        parts.append(token.text)
        pos += len(token.text) + 1
    return " ".join(parts), starts


class HFTokenizer(ModelTokenizer):
    """A Hugging Face fast tokenizer (offsets are required to map ids back to code tokens)."""

    kind = "hf"

    def __init__(self, tokenizer: Any, input_format: str = TOKENS) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError("the transformer's tokenizer must be a fast (Rust) tokenizer")
        if tokenizer.pad_token_id is None:
            raise ModelError("the transformer's tokenizer has no padding token")
        try:
            self.input_format = check_input_format(input_format, "input format")
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        check_expansion(tokenizer)
        self.tok = tokenizer
        self.n_special = int(tokenizer.num_special_tokens_to_add())

    def with_input_format(self, input_format: str) -> HFTokenizer:
        if input_format == self.input_format:
            return self
        return HFTokenizer(self.tok, input_format)

    @classmethod
    def train_bpe(
        cls, texts: Iterable[str], *, vocab_size: int = 8000, min_freq: int = 2
    ) -> HFTokenizer:
        """Train a RoBERTa-style byte-level BPE on (joined) training code."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import PreTrainedTokenizerFast

        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        backend = Tokenizer(models.BPE(unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        backend.post_processor = processors.RobertaProcessing(
            ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>"))
        )
        return cls(PreTrainedTokenizerFast(tokenizer_object=backend, **BPE_SPECIALS))

    @classmethod
    def from_directory(cls, path: str, input_format: str = TOKENS) -> HFTokenizer:
        from pathlib import Path

        from transformers import AutoTokenizer

        # Without any of these, transformers quietly builds an empty tokenizer.
        if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
            raise CheckpointError(
                f"{path}: no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)})"
            )
        from codeaudit.models.safety import first_line

        try:
            tok = AutoTokenizer.from_pretrained(
                path, local_files_only=True, use_fast=True, trust_remote_code=False
            )
        except Exception as exc:  # tokenizer files are untrusted input: any failure is theirs
            raise CheckpointError(f"{path}: cannot load tokenizer: {first_line(exc)}") from None
        try:
            return cls(tok, input_format)
        except ModelError as exc:
            raise CheckpointError(f"{path}: {exc}") from None

    @property
    def pad_id(self) -> int:
        return int(self.tok.pad_token_id)

    @property
    def unk_id(self) -> int | None:
        return self.tok.unk_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    @property
    def id_bound(self) -> int:
        ids = list(self.tok.get_vocab().values())
        specials = [i for i in (self.tok.pad_token_id, self.tok.unk_token_id) if i is not None]
        return max([*ids, *specials, -1]) + 1

    def vocabulary(self) -> list[str]:
        vocab = self.tok.get_vocab()
        itos = [""] * (max(vocab.values()) + 1)
        for token, index in vocab.items():
            itos[index] = token
        return itos

    def encode_tokens(self, tokens: Sequence[CodeToken], max_len: int) -> Encoding:
        self._check_room(max_len)
        text, starts = joined_text(tokens)
        text, cut = bounded_text(text, max_len)
        out = self.tok(
            text,
            truncation=True,
            max_length=max_len,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        ids = out["input_ids"]
        index: list[int] = []
        for (begin, end), special in zip(
            out["offset_mapping"], out["special_tokens_mask"], strict=True
        ):
            if special or end <= begin:
                index.append(-1)
                continue
            index.append(bisect.bisect_right(starts, end - 1) - 1)
        unk = self.unk_id
        unknown = sum(1 for i in ids if i == unk) if unk is not None else 0
        # Truncated when the text has more pieces than the window kept (counted, not guessed
        # from character offsets: a character split into several byte pieces, or a token that
        # ends in whitespace, would fool an offset test).
        kept = sum(1 for special in out["special_tokens_mask"] if not special)
        truncated = cut or (
            kept >= max_len - self.n_special
            and kept < len(self.tok(text, add_special_tokens=False)["input_ids"])
        )
        return Encoding(tuple(ids), tuple(index), len(tokens), truncated, unknown)

    def encode_source(
        self,
        code: str,
        tokens: Sequence[CodeToken],
        max_len: int,
        *,
        lex_truncated: bool = False,
    ) -> Encoding:
        if self.input_format != RAW:
            return super().encode_source(code, tokens, max_len, lex_truncated=lex_truncated)
        self._check_room(max_len)
        # Each whitespace-separated word gives at least one piece: max_len + 1 words encode
        # exactly like the whole function and show whether it is truncated.
        collapsed = collapse_whitespace(code, max_words=max_len + 1)
        text, cut = bounded_text(collapsed.text, max_len)
        out = self.tok(
            text,
            truncation=True,
            max_length=max_len,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        ids = out["input_ids"]
        starts = [t.start for t in tokens]
        index: list[int] = []
        for (begin, end), special in zip(
            out["offset_mapping"], out["special_tokens_mask"], strict=True
        ):
            while begin < end and text[begin] == " ":  # offsets that include the separator
                begin += 1
            if special or end <= begin:
                index.append(-1)
                continue
            # the code token this piece starts in; -1 for pieces of comments
            offset = collapsed.source_offset(begin)
            k = bisect.bisect_right(starts, offset) - 1
            index.append(k if k >= 0 and offset < tokens[k].end else -1)
        unk = self.unk_id
        unknown = sum(1 for i in ids if i == unk) if unk is not None else 0
        kept = sum(1 for special in out["special_tokens_mask"] if not special)
        truncated = (
            collapsed.cut
            or cut
            or (
                kept >= max_len - self.n_special
                and kept < len(self.tok(text, add_special_tokens=False)["input_ids"])
            )
        )
        return Encoding(tuple(ids), tuple(index), len(tokens), truncated, unknown)

    def _check_room(self, max_len: int) -> None:
        if max_len <= self.n_special:
            raise ModelError(
                f"a maximum length of {max_len} ids leaves no room for code: the transformer's "
                f"tokenizer adds {self.n_special} special tokens"
            )

    def to_state(self) -> dict[str, Any]:
        specials = {
            name: getattr(self.tok, name)
            for name in BPE_SPECIALS
            if isinstance(getattr(self.tok, name, None), str)
        }
        return {
            "kind": self.kind,
            "tokenizer_json": self.tok.backend_tokenizer.to_str(),
            "special_tokens": specials,
            "input_format": self.input_format,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HFTokenizer:
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        blob = state.get("tokenizer_json")
        specials = state.get("special_tokens", {})
        input_format = state.get("input_format", TOKENS)  # checkpoints before it was recorded
        if not isinstance(blob, str) or not isinstance(specials, dict):
            raise CheckpointError("transformer tokenizer state is malformed")
        if not isinstance(input_format, str):
            raise CheckpointError("transformer tokenizer input format is malformed")
        try:
            check_input_format(input_format, "input format")
        except ValueError as exc:
            raise CheckpointError(f"{exc} (written by a newer codeaudit?)") from None
        from codeaudit.models.safety import first_line

        if not all(isinstance(k, str) and isinstance(v, str) for k, v in specials.items()):
            raise CheckpointError("transformer tokenizer special tokens are malformed")
        try:
            backend = Tokenizer.from_str(blob)
            tok = PreTrainedTokenizerFast(tokenizer_object=backend, **specials)
        except Exception as exc:  # the tokenizers library raises plain Exception
            raise CheckpointError(
                f"transformer tokenizer cannot be read: {first_line(exc)}"
            ) from None
        return cls(tok, input_format)


TOKENIZERS: dict[str, type[VocabTokenizer] | type[HFTokenizer]] = {
    VocabTokenizer.kind: VocabTokenizer,
    HFTokenizer.kind: HFTokenizer,
}


def tokenizer_from_state(state: object) -> ModelTokenizer:
    if not isinstance(state, dict) or state.get("kind") not in TOKENIZERS:
        raise CheckpointError("checkpoint has no usable tokenizer")
    return TOKENIZERS[state["kind"]].from_state(state)
