"""What every report holds: a header (tool, command, inputs and their hashes), the command's
results, warnings and findings. Results are frozen dataclasses; renderers turn them into text."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from codeaudit import __version__
from codeaudit.threads import ThreadChoice


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Severity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


FAIL_ON_CHOICES = ("low", "medium", "high", "critical", "never")


@dataclass(frozen=True)
class Finding:
    """A rule that fired on a result."""

    rule_id: str
    title: str
    severity: Severity
    message: str
    target: str
    metric: str | None = None
    value: float | str | None = None
    threshold: float | bool | str | None = None
    help_uri: str | None = None
    confidence: str = "medium"
    description: str | None = None  # the rule's longer explanation (SARIF help)
    tags: tuple[str, ...] = ()
    command: str | None = None  # the command (audit: the check) whose result it read
    op: str | None = None  # how value compares with threshold when the rule fires (">", "==")

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a finding across runs (baselines, SARIF fingerprints): the rule and
        the target, never the metric value."""
        return (self.rule_id, normalise_target(self.target))


def normalise_target(target: str) -> str:
    """A target path as it should compare across runs: relative to the working directory when
    inside it, with separators and ``./`` normalised."""
    import os

    path = Path(target)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(Path.cwd().resolve())
        except (ValueError, OSError):
            return Path(os.path.normpath(path)).as_posix()
    return Path(os.path.normpath(path)).as_posix()


@dataclass(frozen=True)
class Artifact:
    """A file a command read or wrote, by path and content hash."""

    role: str  # "model", "data", "members", "output", ...
    path: str
    sha256: str | None


@dataclass(frozen=True)
class TrainingPrivacy:
    """The differential-privacy guarantee a checkpoint records for its training
    (``codeaudit train --dp``; read back by :func:`codeaudit.models.privacy.privacy_of`)."""

    mechanism: str  # "dp-sgd"
    epsilon: float  # spent, from the accountant after the last step
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    accountant: str  # "prv" | "rdp"
    sample_rate: float  # Poisson sampling: each function's chance to join a step's batch
    steps: int
    target_epsilon: float | None = None  # --dp-epsilon, when the noise was chosen from it
    library: str | None = None  # "opacus 1.6.0"
    covers: str = "weights"  # "weights+vocabulary": the vocabulary was built on other code

    def describe(self) -> str:
        """The guarantee in one line."""
        target = f" (target {self.target_epsilon:g})" if self.target_epsilon is not None else ""
        return (
            f"DP-SGD ({self.epsilon:.2f}, {self.delta:g})-DP{target}: noise multiplier "
            f"{self.noise_multiplier:.3g}, clipping norm {self.max_grad_norm:g}, {self.steps} "
            f"steps at sample rate {self.sample_rate:.3g}, {self.accountant} accountant; "
            + (
                "covers the weights and the vocabulary (built on other code)"
                if self.covers == "weights+vocabulary"
                else "covers the weights, not the vocabulary built from the training data"
            )
        )


@dataclass(frozen=True)
class CheckpointInfo:
    """How the model was loaded (the checkpoint-safety rules read this)."""

    source: str  # "codeaudit" | "huggingface" | a bare state dict's layout ("codexglue", ...)
    trusted_pickle: bool
    input_format: str | None = None  # the text the model reads: "tokens" | "raw"
    max_len: int | None = None  # ids per function it reads (special tokens included)
    outputs: int | None = None  # logits it computes: 2, or 1 for a sigmoid model
    privacy: TrainingPrivacy | None = None  # the DP guarantee its training recorded, if any


@dataclass(frozen=True)
class BaselineInfo:
    """The earlier report findings were compared with (``--baseline``)."""

    path: str
    sha256: str
    suppressed: int  # findings also in the baseline, left out of this report
    suppressed_rules: tuple[str, ...] = ()  # their rule ids, one per suppressed finding


@dataclass(frozen=True)
class Gate:
    """How findings were turned into an exit code: the rule settings in force, and the result.

    Set by the command line on every command with rule options, so that a report says which
    rules judged it and whether it passed."""

    fail_on: str
    exit_code: int
    rules_evaluated: int  # rules that could fire on this command's result
    rule_files: tuple[str, ...] = ()  # --rules / [tool.codeaudit] rules, beyond the defaults
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    config_file: str | None = None  # the pyproject.toml whose [tool.codeaudit] applied
    baseline: BaselineInfo | None = None
    started: str | None = None  # UTC, ISO 8601
    finished: str | None = None


@dataclass(frozen=True, kw_only=True)
class Header:
    tool: str = "codeaudit"
    version: str = __version__
    command: str
    created: str = field(default_factory=utc_now)
    seed: int | None = None
    threads: ThreadChoice | None = None  # what the work ran with (codeaudit.threads)
    artifacts: tuple[Artifact, ...] = ()
    gate: Gate | None = None

    def artifact(self, role: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.role == role), None)


def exit_code(findings: tuple[Finding, ...] | list[Finding], fail_on: str) -> int:
    """0 when no finding is at or above ``fail_on`` (``never``: always 0), else 1."""
    if fail_on == "never":
        return 0
    floor = Severity(fail_on).rank
    return 1 if any(f.severity.rank >= floor for f in findings) else 0


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from dataclasses, enums, numpy values, paths and tuples."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
