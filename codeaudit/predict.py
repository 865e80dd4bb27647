"""Per-sample predictions of a VP model, with metrics when the data are labelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from codeaudit.data.samples import Dataset
from codeaudit.metrics import classification_metrics
from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer, softmax
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


def predict_dataset(
    model: VPModel,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    max_len: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Prediction], PredictMetrics | None, int]:
    """Predictions in input order, metrics (None when unlabelled) and the truncated count."""
    encodings = model.encode(dataset.samples, max_len=max_len)
    out = infer(model, encodings, batch_size=batch_size, progress=progress)
    probs = softmax(out.logits)
    predicted = probs.argmax(axis=1)
    predictions = [
        Prediction(s.id, s.label, int(p), round(float(q), 6))
        for s, p, q in zip(dataset.samples, predicted, probs[:, 1], strict=True)
    ]
    metrics = None
    if dataset.has_labels:
        values = classification_metrics(dataset.labels(), predicted, probs[:, 1])
        metrics = PredictMetrics(**values)  # type: ignore[arg-type]
    truncated = sum(e.truncated for e in encodings)
    return predictions, metrics, int(truncated)
