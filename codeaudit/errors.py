"""The exception hierarchy. Library code raises these; only the CLI turns them into exit codes.

Every message is one line that says what is wrong and where (file, line, field), so the CLI can
print it as is.
"""

from __future__ import annotations


class CodeAuditError(Exception):
    """Root of every error codeaudit raises on purpose (bad input, bad usage, bad files)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep messages on one line whatever the caller passed.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(CodeAuditError):
    """Flags or settings that do not fit together."""


class DataError(CodeAuditError):
    """A data file that cannot be read as labelled code samples."""


class LanguageError(CodeAuditError):
    """An unsupported programming language or a grammar that cannot be loaded."""


class CheckpointError(CodeAuditError):
    """A model file that cannot be loaded safely, or is not a model codeaudit understands."""


class ModelError(CodeAuditError):
    """A model that cannot do what was asked (wrong shape, mismatched tokenizer, missing device)."""


class OutputError(CodeAuditError):
    """An output file that cannot be written (exists without --force, directory missing)."""


class TrainingError(CodeAuditError):
    """Training data or settings that cannot produce a model."""


class ReportError(CodeAuditError):
    """A report, baseline or report setting that cannot be used (unreadable baseline, clashing
    report paths, a format that cannot be written)."""


class HardenError(CodeAuditError):
    """A model or settings that NMID hardening cannot work with (already hardened, bad sigma)."""


class PoisonError(CodeAuditError):
    """Poisoning settings or data that cannot make a poisoned set (bad trigger, no room for it)."""


class BackdoorError(CodeAuditError):
    """A model, data set or manifest that the backdoor scan or repair cannot work with."""


class ExecutorError(CodeAuditError):
    """Work that failed on a worker (after its retries), or an executor that cannot start (a Ray
    cluster that cannot be reached); the message names the task (``reference model 3``)."""
