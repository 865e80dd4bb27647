"""How a model file is loaded and fed: the options every command that reads a model shares.

Plain Python (no torch), so configurations and the command line can build it cheaply; checked
when built, with errors that name the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from codeaudit.errors import UsageError
from codeaudit.models.input_format import check_input_format


@dataclass(frozen=True)
class LoadOptions:
    """``trust_checkpoint``: allow a checkpoint that needs full unpickling (it can run code).
    ``base``: for a bare ``model.bin`` (CodeXGLUE, EliBadCode), the base model it was fine-tuned
    from: a local directory with ``config.json`` and tokenizer files, or a Hugging Face model id
    found in the local cache (never downloaded). ``input_format``: the text the model reads
    (:mod:`codeaudit.models.input_format`; None: what the checkpoint records, or the format's
    published default). ``max_len``: ids per function, special tokens included (None: the
    model's own)."""

    trust_checkpoint: bool = False
    base: str | None = None
    input_format: str | None = None
    max_len: int | None = None

    def __post_init__(self) -> None:
        if self.input_format is not None:
            try:
                check_input_format(self.input_format, "input format")
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if self.max_len is not None and (
            isinstance(self.max_len, bool) or not isinstance(self.max_len, int) or self.max_len < 1
        ):
            raise UsageError(f"max length {self.max_len!r} must be a whole number of ids >= 1")
        if self.base is not None and (not isinstance(self.base, str) or not self.base.strip()):
            raise UsageError("base model must be a directory or a Hugging Face model id")
