"""Splitting identifiers into sub-tokens, the way subword tokenizers split words.

``getUserName_v2`` becomes ``get ##User ##Name ##_v ##2``: the first piece of a name is bare and
every later piece carries the continuation marker ``##``, so word boundaries stay recoverable
(:func:`join_subtokens` gives the exact name back). Underscores stay attached to the piece they
precede, so ``buf_len`` is ``buf ##_len`` and a BadCode-style postfix ``_rb`` is one piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONTINUATION = "##"

_PIECE = re.compile(
    r"""
    _*(?:
        [A-Z]+(?=[A-Z][a-z])      # acronym before a capitalised word: HTTP|Server
      | [A-Z]?[a-z]+              # word, optionally capitalised: get, User
      | [A-Z]+                    # trailing acronym: ID
      | [0-9]+                    # digits
      | [^\W\d_]+                 # other letters (non-ASCII identifiers)
    )
    | _+                          # trailing underscores
    | .                           # anything else, one character at a time
    """,
    re.VERBOSE | re.DOTALL,
)


def split_identifier(name: str) -> list[str]:
    """The pieces of an identifier, without markers; ``"".join(pieces) == name`` always."""
    if not name:
        return []
    pieces = _PIECE.findall(name)
    if "".join(pieces) != name:  # pragma: no cover - the pattern covers every character
        return [name]
    return pieces


def subtokens(name: str) -> list[str]:
    """Pieces of an identifier with the continuation marker on every piece after the first."""
    pieces = split_identifier(name)
    return pieces[:1] + [CONTINUATION + piece for piece in pieces[1:]]


def is_continuation(piece: str) -> bool:
    return piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION)


def join_subtokens(pieces: Iterable[str]) -> list[str]:
    """Rebuild the names from a flat sequence of sub-tokens (inverse of :func:`subtokens`)."""
    names: list[str] = []
    for piece in pieces:
        if is_continuation(piece) and names:
            names[-1] += piece[len(CONTINUATION) :]
        else:
            names.append(piece)
    return names
