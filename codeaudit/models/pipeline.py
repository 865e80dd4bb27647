"""Inference overlapped with the Python work that makes its inputs.

Rewriting functions (tree-sitter and Python) and running the model on the rewrites (torch) are
the two halves of harden's largest stage. torch releases the GIL inside its operators, so one
Python thread can write and encode the next chunk of inputs while the model reads the current
one. Where the run has two or more threads (or the model is on an accelerator), the model's
threads are one fewer while the two overlap: on a 2-core machine a second torch thread next to
the busy writer costs far more than it gives (docs/threads.md). With one thread the chunks run
one after the other, as before.

The inputs of each chunk are made exactly as they would be in one piece. The model's outputs
can differ from one piece's in the last bits (float32 rounding: a sample meets other batches,
and with two threads the overlapped model runs on one), never by more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Generic, TypeVar

import numpy as np

from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer
from codeaudit.models.tokenizer import Encoding

T = TypeVar("T")


class Chunk(Generic[T]):
    """One chunk's inputs, what else its producer returned, and the model's logits on them."""

    __slots__ = ("encodings", "extra", "logits")

    def __init__(self, encodings: Sequence[Encoding], extra: T, logits: np.ndarray) -> None:
        self.encodings = encodings
        self.extra = extra
        self.logits = logits


def overlaps(model: VPModel) -> bool:
    """Whether making inputs and inference run side by side for this model in this run: on an
    accelerator, or with two or more torch threads."""
    import torch

    return model.device.type != "cpu" or torch.get_num_threads() >= 2


def infer_chunks(
    model: VPModel,
    produce: Callable[[int], tuple[Sequence[Encoding], T]],
    chunks: int,
    *,
    batch_size: int,
    overlap: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Chunk[T]]:
    """``produce(i)`` for i in ``range(chunks)`` (encodings and anything else), and the model's
    logits on each chunk's encodings, in order. ``overlap`` (default :func:`overlaps`): make
    chunk i+1 in a helper thread while the model reads chunk i. ``progress(done, chunks)`` is
    called from the calling thread."""
    if overlap is None:
        overlap = overlaps(model)
    out: list[Chunk[T]] = []

    def run(chunk: int, made: tuple[Sequence[Encoding], T]) -> None:
        encodings, extra = made
        logits = (
            infer(model, encodings, batch_size=batch_size).logits
            if len(encodings)
            else np.zeros((0, 2), dtype=np.float32)
        )
        out.append(Chunk(encodings, extra, logits))
        if progress is not None:
            progress(chunk + 1, chunks)

    if not overlap or chunks <= 1:
        for chunk in range(chunks):
            run(chunk, produce(chunk))
        return out
    with _fewer_threads(model), ThreadPoolExecutor(1, thread_name_prefix="codeaudit-make") as pool:
        pending: Future[tuple[Sequence[Encoding], T]] = pool.submit(produce, 0)
        try:
            for chunk in range(chunks):
                made = pending.result()
                if chunk + 1 < chunks:
                    pending = pool.submit(produce, chunk + 1)
                run(chunk, made)
        finally:
            pending.cancel()  # on an error or Ctrl-C: no further chunk is started
    return out


def _fewer_threads(model: VPModel) -> AbstractContextManager[None]:
    """One torch thread fewer on the CPU while the helper thread writes inputs."""
    import torch

    if model.device.type != "cpu":
        return nullcontext()
    from codeaudit.threads import limit_threads

    return limit_threads(max(1, torch.get_num_threads() - 1))
