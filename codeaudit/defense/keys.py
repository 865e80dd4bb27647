"""NMID keys kept in files: a reproducible build, or the same key for a re-hardened model."""

from __future__ import annotations

from pathlib import Path

from codeaudit.errors import HardenError
from codeaudit.io import check_input_file


def read_key_file(path: str | Path) -> str:
    """The NMID key in a key file: 32 hex digits (128 bits), surrounding whitespace ignored;
    HardenError (one line, naming the file) otherwise."""
    p = check_input_file(path, "key file", error=HardenError)
    try:
        text = p.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError):
        raise HardenError(f"{path}: the key file must hold 32 hex digits") from None
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise HardenError(f"{path}: the key file must hold 32 hex digits (128 bits)")
    return text
