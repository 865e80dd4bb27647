"""Per-sample predictions of a VP model, with metrics when the data are labelled."""

from __future__ import annotations

from collections.abc import Callable

from codeaudit.data.samples import Dataset
from codeaudit.metrics import classification_metrics
from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer, softmax
from codeaudit.predict.result import Prediction, PredictMetrics


def predict_dataset(
    model: VPModel,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    max_len: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 2048,
) -> tuple[list[Prediction], PredictMetrics | None, int]:
    """Predictions in input order, metrics (None when unlabelled) and the truncated count.

    Streamed in chunks of ``chunk_size`` samples: only one chunk's token ids are held at a time,
    so memory grows with the samples and their predictions, not with their token ids."""
    import numpy as np

    n = len(dataset)
    logits = np.zeros((n, 2), dtype=np.float32)
    truncated = 0
    for start in range(0, n, chunk_size):
        chunk = dataset.samples[start : start + chunk_size]
        encodings = model.encode(chunk, max_len=max_len)
        truncated += sum(e.truncated for e in encodings)

        def chunk_progress(done: int, _total: int, _start: int = start) -> None:
            if progress is not None:
                progress(_start + done, n)

        out = infer(model, encodings, batch_size=batch_size, progress=chunk_progress)
        logits[start : start + len(chunk)] = out.logits
        del encodings
    probs = softmax(logits)
    predicted = probs.argmax(axis=1)
    predictions = [
        Prediction(s.id, s.label, int(p), round(float(q), 6))
        for s, p, q in zip(dataset.samples, predicted, probs[:, 1], strict=True)
    ]
    metrics = None
    if dataset.has_labels:
        values = classification_metrics(dataset.labels(), predicted, probs[:, 1])
        metrics = PredictMetrics(**values)  # type: ignore[arg-type]
    return predictions, metrics, int(truncated)
