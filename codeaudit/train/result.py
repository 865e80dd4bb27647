"""The result of ``codeaudit train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import Finding, Header
from codeaudit.train.trainer import EpochRecord, SplitMetrics


@dataclass(frozen=True)
class TrainResult:
    header: Header
    arch: str
    hyperparameters: dict[str, Any]
    parameters: int  # trainable parameter count
    vocab_size: int
    n_train: int
    n_val: int
    val_source: str  # "file" | "split" | "none"
    train_metrics: SplitMetrics
    val_metrics: SplitMetrics | None
    history: tuple[EpochRecord, ...]
    kept_epoch: int
    conflicting_identical: int  # training samples identical to one with the other label
    skipped: int
    seconds: float
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
