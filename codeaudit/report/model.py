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
    threshold: float | str | None = None
    help_uri: str | None = None


@dataclass(frozen=True)
class Artifact:
    """A file a command read or wrote, by path and content hash."""

    role: str  # "model", "data", "members", "output", ...
    path: str
    sha256: str | None


@dataclass(frozen=True)
class CheckpointInfo:
    """How the model was loaded (the checkpoint-safety rules read this)."""

    source: str  # "codeaudit" | "huggingface"
    trusted_pickle: bool


@dataclass(frozen=True, kw_only=True)
class Header:
    tool: str = "codeaudit"
    version: str = __version__
    command: str
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    seed: int | None = None
    artifacts: tuple[Artifact, ...] = ()

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
