"""The result of ``codeaudit predict`` (plain data: importing it needs no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class Prediction:
    id: str
    label: int | None
    predicted_label: int
    p_vulnerable: float


@dataclass(frozen=True)
class PredictMetrics:
    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class PredictResult:
    header: Header
    checkpoint: CheckpointInfo
    n: int
    predicted_vulnerable: int
    truncated: int
    skipped: int
    metrics: PredictMetrics | None
    predictions: tuple[Prediction, ...]
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.predict.sections import predict_sections

        return predict_sections(self, figures)
