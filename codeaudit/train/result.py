"""The result of ``codeaudit train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import Finding, Header, TrainingPrivacy


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float | None
    val_accuracy: float | None
    val_f1: float | None
    seconds: float


@dataclass(frozen=True)
class SplitMetrics:
    """How a model does on one set of samples."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    loss: float
    unk_rate: float
    truncated: int
    vulnerable: int = 0  # labelled vulnerable
    predicted_vulnerable: int = 0


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
    privacy: TrainingPrivacy | None = None  # --dp: the guarantee the checkpoint records

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.train.sections import train_sections

        return train_sections(self, figures)
