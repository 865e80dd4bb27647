"""How a model file is loaded and fed: the options every command that reads a model shares.

Plain Python (no torch), so configurations and the command line can build it cheaply; checked
when built, with errors that name the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from codeaudit.models.input_format import INPUT_FORMATS, MAX_LEN_CAP
from codeaudit.params import ParameterError, check_params, param


@dataclass(frozen=True)
class LoadOptions:
    """``trust_checkpoint``: allow a checkpoint that needs full unpickling (it can run code).
    ``base``: for a bare ``model.bin`` (CodeXGLUE, EliBadCode), the base model it was fine-tuned
    from: a local directory with ``config.json`` and tokenizer files, or a Hugging Face model id
    found in the local cache (never downloaded). ``input_format``: the text the model reads
    (:mod:`codeaudit.models.input_format`; None: what the checkpoint records, or the format's
    published default). ``max_len``: ids per function, special tokens included (None: the
    model's own)."""

    base: str | None = param(
        None,
        metavar="DIR|ID",
        help="For a bare model.bin (CodeXGLUE, EliBadCode): the base model it was fine-tuned "
        "from, a directory with config.json and tokenizer files or a Hugging Face id in the "
        "local cache (never downloaded).",
    )
    input_format: str | None = param(
        None,
        choices=INPUT_FORMATS,
        help="The text the model was trained on: raw (whitespace-collapsed source, comments "
        "kept: CodeXGLUE) or tokens (code tokens joined by spaces, comments dropped: "
        "EliBadCode, codeaudit). Default: what the checkpoint records; raw for a Hugging Face "
        "directory; the published default of a model.bin's layout.",
    )
    max_len: int | None = param(
        None,
        minimum=1,
        maximum=MAX_LEN_CAP,
        kind=int,
        help="Ids per function the model reads, special tokens included (default: the model's "
        "own; 400 for CodeXGLUE and EliBadCode model.bin).",
    )
    trust_checkpoint: bool = param(
        False,
        help="Allow a checkpoint that needs full unpickling (can run code: only for trusted "
        "files).",
    )

    def __post_init__(self) -> None:
        check_params(self)
        if self.base is not None and (not isinstance(self.base, str) or not self.base.strip()):
            raise ParameterError(
                "base", "must be a directory or a Hugging Face model id", type(self)
            )
