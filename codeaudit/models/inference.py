"""Batched inference: length-bucketed batches under ``torch.inference_mode``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.models.base import VPModel
from codeaudit.models.tokenizer import Encoding

Progress = Callable[[int, int], None]  # (done, total)


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (stable order, so deterministic)."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class InferenceOutput:
    logits: np.ndarray  # [N, 2] float32
    embeddings: np.ndarray | None  # [N, D] float32 when requested

    @property
    def probabilities(self) -> np.ndarray:
        return softmax(self.logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def infer(
    model: VPModel,
    encodings: Sequence[Encoding],
    *,
    batch_size: int = 64,
    embeddings: bool = False,
    progress: Progress | None = None,
) -> InferenceOutput:
    """Logits (and optionally penultimate embeddings) for every encoding, in input order."""
    import torch

    n = len(encodings)
    logits = np.zeros((n, 2), dtype=np.float32)
    embeds: np.ndarray | None = None
    was_training = model.module.training
    model.eval()
    device = model.device
    done = 0
    try:
        with torch.inference_mode():
            for index in length_buckets([len(e.ids) for e in encodings], batch_size):
                batch = model.collate([encodings[i] for i in index]).to(device)
                out = model.forward(batch)
                logits[index] = out.logits.float().cpu().numpy()
                if embeddings:
                    vectors = out.embedding.float().cpu().numpy()
                    if embeds is None:
                        embeds = np.zeros((n, vectors.shape[1]), dtype=np.float32)
                    embeds[index] = vectors
                done += len(index)
                if progress is not None:
                    progress(done, n)
    finally:
        model.train(was_training)
    return InferenceOutput(logits, embeds)
