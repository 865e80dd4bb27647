"""Per-sample predictions of a VP model, with metrics when the data are labelled."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext

from codeaudit.data.samples import Dataset
from codeaudit.metrics import classification_metrics
from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer, length_buckets, softmax
from codeaudit.predict.result import Prediction, PredictMetrics

#: Samples per chunk when encoding runs ahead of inference (the first chunk is encoded before
#: any inference starts, so it is small).
AHEAD_CHUNK = 256
#: Fewest samples for which encoding runs ahead by default (the helper process takes about half
#: a second to start).
AHEAD_MIN = 1024
#: Architectures whose output for a sample does not depend on the other samples of its batch
#: (codeaudit.models.rnn: no padding reaches a real position), so the smaller chunks of the
#: ahead path change no bit of any result.
AHEAD_ARCHS = frozenset({"lstm", "bigru"})


def predict_dataset(
    model: VPModel,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    max_len: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 2048,
    ahead: bool | None = None,
    share_threads: bool = True,
) -> tuple[list[Prediction], PredictMetrics | None, int]:
    """Predictions in input order, metrics (None when unlabelled) and the truncated count.

    Streamed in chunks of ``chunk_size`` samples: only one chunk's token ids are held at a time,
    so memory grows with the samples and their predictions, not with their token ids.

    ``ahead``: encode in a helper process while inferring (:class:`~codeaudit.models.encoding.
    ChunkEncoder`, chunks of at most :data:`AHEAD_CHUNK`). While the helper encodes, inference
    runs with one torch thread fewer than the caller set (through
    :func:`codeaudit.threads.limit_threads`, restored as soon as the helper is idle), so the two
    share the cores the caller gave instead of competing for them (``share_threads=False``:
    torch keeps every thread, for comparison). Default: for the architectures of
    :data:`AHEAD_ARCHS`, with two threads or more and at least :data:`AHEAD_MIN` samples. The
    predictions are the same either way, bit for bit."""
    import numpy as np
    import torch

    from codeaudit.models.encoding import ChunkEncoder, current_run, encoding_run
    from codeaudit.threads import limit_threads

    n = len(dataset)
    threads = torch.get_num_threads()
    if ahead is None:
        ahead = model.arch in AHEAD_ARCHS and threads > 1 and n >= AHEAD_MIN
    size = max(1, min(chunk_size, AHEAD_CHUNK) if ahead else chunk_size)
    limit = model.max_len if max_len is None else max_len
    starts = range(0, n, size)
    chunks = [[(s.code, model.lang_of(s)) for s in dataset.samples[i : i + size]] for i in starts]

    logits = np.zeros((n, 2), dtype=np.float32)
    truncated = 0
    done = 0
    run: AbstractContextManager[object] = (
        encoding_run() if ahead and current_run() is None else nullcontext()
    )
    # One torch thread fewer while the helper encodes: entered when it starts encoding, left
    # when it is idle (not per batch: setting the thread pools costs about a millisecond).
    shared = ExitStack()
    sharing = False
    with run, shared, ChunkEncoder(model.tokenizer, chunks, limit, ahead=ahead) as encoder:
        for start, encodings in zip(starts, encoder, strict=True):
            truncated += sum(e.truncated for e in encodings)
            # The batches infer() would make of the chunk, one call each (the same tensors).
            for index in length_buckets([len(e.ids) for e in encodings], batch_size):
                if share_threads and threads > 1 and encoder.busy() != sharing:
                    sharing = not sharing
                    if sharing:
                        shared.enter_context(limit_threads(threads - 1))
                    else:
                        shared.close()
                out = infer(model, [encodings[i] for i in index], batch_size=len(index))
                logits[start + index] = out.logits
                done += len(index)
                if progress is not None:
                    progress(done, n)
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
