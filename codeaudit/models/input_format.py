"""Which text a transformer reads: the input format a model was trained on.

A model only means something on the kind of text it was trained on, so the format is part of the
model (recorded in codeaudit checkpoints, given by the user for foreign ones):

* ``tokens``: the code tokens of codeaudit's tree-sitter lexer joined by single spaces, comments
  dropped, string literals whole. What codeaudit's own models read, and what EliBadCode feeds its
  models (tree-sitter code tokens joined by spaces, comments removed).
* ``raw``: the source with every run of whitespace collapsed to one space and nothing else
  changed, comments included: ``" ".join(code.split())``, what the CodeXGLUE defect-detection
  code feeds CodeBERT.

This module is plain Python (no torch, no tokenizers), so configuration code can import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The most ids per function any codeaudit model reads (``train --max-len`` allows no more): what
# bounds a model without position embeddings (the RNNs); a transformer is bounded by its
# positions. A checkpoint that records more is refused.
MAX_LEN_CAP = 4096

TOKENS = "tokens"
RAW = "raw"
INPUT_FORMATS = (RAW, TOKENS)

# Python's str.split() separates on exactly the characters for which str.isspace() is true, and
# so does \s in a str pattern: the same words, found lazily (a long function is read only as far
# as the model reads it).
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class CollapsedText:
    """Whitespace-collapsed text and where each of its words came from."""

    text: str
    text_starts: tuple[int, ...]  # word k starts at text_starts[k] in ``text``
    code_starts: tuple[int, ...]  # ... and at code_starts[k] in the source
    cut: bool  # the source has more words than were kept

    def source_offset(self, offset: int) -> int:
        """The source offset of a character of ``text`` (a separating space maps to the end of
        the word before it)."""
        import bisect

        k = bisect.bisect_right(self.text_starts, offset) - 1
        if k < 0:
            return 0
        return self.code_starts[k] + (offset - self.text_starts[k])


def collapse_whitespace(code: str, max_words: int | None = None) -> CollapsedText:
    """``" ".join(code.split())``, keeping at most ``max_words`` words.

    Every tokenizer codeaudit loads splits on whitespace before anything else, so each word gives
    at least one piece and a model reading ``n`` pieces never reads past word ``n``: keeping
    ``max_len + 1`` words encodes exactly like the whole text, at the cost of what is read."""
    words: list[str] = []
    text_starts: list[int] = []
    code_starts: list[int] = []
    position = 0
    cut = False
    for match in _WORD.finditer(code):
        if max_words is not None and len(words) >= max_words:
            cut = True
            break
        words.append(match.group())
        text_starts.append(position)
        code_starts.append(match.start())
        position += len(words[-1]) + 1
    return CollapsedText(" ".join(words), tuple(text_starts), tuple(code_starts), cut)


def check_input_format(value: str, where: str = "--input-format") -> str:
    """The format name, or a ValueError naming the choices."""
    if value not in INPUT_FORMATS:
        choices = ", ".join(INPUT_FORMATS)
        raise ValueError(f"{where} {value!r}: unknown input format (use {choices})")
    return value
