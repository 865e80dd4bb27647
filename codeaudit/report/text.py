"""Text that is safe to show a person: terminal control characters made visible.

Every sink that a person reads as text (the terminal report and its ``.txt`` file, the one-line
error on stderr, progress lines, Markdown) passes data through :func:`printable`, so that an id,
a label name, a path or a piece of code cannot clear the screen, plant a hidden hyperlink (OSC
8), write the clipboard (OSC 52) or reorder what is shown (bidi overrides). Each such character
is shown as its Python escape (``\\x1b``, ``\\x9b``, ``\\u202e``): visible, and the same text a
JSON report holds (JSON and SARIF keep the data exact; their serialiser escapes control
characters itself).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides and isolates,
# the implicit direction marks, and the line and paragraph separators (which some terminals and
# viewers break lines on).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}]")


def json_safe(document: str) -> str:
    """A JSON text with the characters JSON leaves raw but a terminal obeys (DEL, C1, bidi
    controls) written as ``\\uXXXX`` escapes: the same data once parsed (they can only occur
    inside strings), harmless when the file is shown with ``cat``."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def printable(text: object, *, one_line: bool = False) -> str:
    """``text`` with every terminal control character (C0 except tab and newline, DEL, C1) and
    every bidi control shown as its escape; with ``one_line`` tab and newline too."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_visible, str(text))
