"""How data files are read: the options every command that reads data shares (plain Python)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataConfig:
    """How to read data files."""

    code_field: str | None = None
    label_field: str | None = None
    lang: str | None = None  # default language for records without a "lang" field
    skip_invalid: bool = False
