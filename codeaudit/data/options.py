"""How data files are read: the options every command that reads data shares (plain Python)."""

from __future__ import annotations

from dataclasses import dataclass

from codeaudit.params import check_params, param, resolve


@dataclass(frozen=True)
class DataConfig:
    """How to read data files."""

    code_field: str | None = param(
        None, help="Field holding the code (default: func, code, source)."
    )
    label_field: str | None = param(
        None, help="Field holding the 0/1 label (default: target, label, vul)."
    )
    lang: str | None = param(  # default language for records without a "lang" field
        None,
        help="Language of records without a 'lang' field: c, cpp, java, python (default c).",
    )
    skip_invalid: bool = param(
        False, help="Skip (and count) invalid records instead of stopping at the first."
    )

    def __post_init__(self) -> None:
        check_params(self)
        if self.lang is not None:
            from codeaudit.lang.languages import normalize_language

            resolve(self, lang=normalize_language(self.lang))
