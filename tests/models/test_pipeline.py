"""Inference overlapped with making its inputs (codeaudit.models.pipeline), and harden's
rewrites written chunk by chunk through it (codeaudit.defense.evaluate.observe)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from codeaudit.data.loader import load_dataset
from codeaudit.data.samples import Dataset
from codeaudit.defense import evaluate
from codeaudit.defense.evaluate import observe, rewrite_variants
from codeaudit.models.inference import infer
from codeaudit.models.pipeline import infer_chunks, overlaps
from codeaudit.threads import limit_threads


@pytest.fixture(scope="module")
def bigru(trained: dict):  # type: ignore[no-untyped-def]
    return trained["bigru"][1]


@pytest.fixture(scope="module")
def samples(planted_files: dict[str, Path]) -> tuple:
    return tuple(load_dataset(str(planted_files["train"])).samples)[:40]


@pytest.mark.parametrize("overlap", [False, True])
def test_chunks_give_what_one_piece_gives(bigru, samples: tuple, overlap: bool) -> None:  # type: ignore[no-untyped-def]
    encodings = tuple(bigru.encode(samples))
    whole = infer(bigru, encodings).logits  # one thread (conftest)
    made_in: set[str] = set()
    seen_threads: list[int] = []

    def produce(chunk: int) -> tuple[tuple, int]:
        made_in.add(threading.current_thread().name)
        seen_threads.append(torch.get_num_threads())  # global: what the model runs with now
        return encodings[chunk * 7 : chunk * 7 + 7], chunk

    progress: list[tuple[int, int]] = []
    threads = 2 if overlap else 1  # with two, the overlapped model runs on one
    with limit_threads(threads):
        chunks = infer_chunks(
            bigru,
            produce,
            6,
            batch_size=3,
            overlap=overlap,
            progress=lambda d, t: progress.append((d, t)),
        )
        assert torch.get_num_threads() == threads  # restored after the overlap
    assert [c.extra for c in chunks] == list(range(6))
    # other batches can change the last bits (float32 rounding), never more
    np.testing.assert_allclose(np.concatenate([c.logits for c in chunks]), whole, rtol=0, atol=1e-5)
    assert progress == [(i, 6) for i in range(1, 7)]
    if overlap:  # made in a helper thread while the model ran with one thread fewer
        assert made_in and threading.current_thread().name not in made_in
        assert seen_threads[1:] == [1] * 5
    else:
        assert made_in == {threading.current_thread().name}
        assert seen_threads == [1] * 6


def test_a_failing_producer_stops_the_chunks(bigru, samples: tuple) -> None:  # type: ignore[no-untyped-def]
    encodings = tuple(bigru.encode(samples[:4]))
    made: list[int] = []

    def produce(chunk: int) -> tuple[tuple, None]:
        made.append(chunk)
        if chunk == 2:
            raise RuntimeError("boom in chunk 2")
        return encodings, None

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom in chunk 2"):
        infer_chunks(bigru, produce, 10, batch_size=4, overlap=True)
    assert made == [0, 1, 2]  # nothing started after the failure
    assert torch.get_num_threads() == before


def test_overlap_needs_threads_to_spare(bigru) -> None:  # type: ignore[no-untyped-def]
    with limit_threads(1):
        assert not overlaps(bigru)
    with limit_threads(2):
        assert overlaps(bigru)


def test_rewrites_of_a_slice_are_those_of_the_whole(samples: tuple) -> None:
    whole, owner = rewrite_variants(samples, 3, seed=5, default_lang="c")
    parts = [rewrite_variants(samples[lo : lo + 7], 3, seed=5, default_lang="c", start=lo)
             for lo in range(0, len(samples), 7)]  # fmt: skip
    assert [v.code for part, _ in parts for v in part] == [v.code for v in whole]
    np.testing.assert_array_equal(np.concatenate([o for _, o in parts]), owner)
    assert len(set(owner.tolist())) > len(samples) // 2  # most functions got a rewrite


@pytest.mark.parametrize("threads", [1, 2])
def test_observe_in_chunks_equals_one_piece(
    bigru, samples: tuple, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    members = Dataset(samples=samples[:25], path="m", sha256=None)
    nonmembers = Dataset(samples=samples[25:], path="n", sha256=None)
    variants, owner = rewrite_variants(samples, 4, seed=0, default_lang="c", skipped=Counter())
    expected = infer(bigru, tuple(bigru.encode(variants))).logits
    monkeypatch.setattr(evaluate, "REWRITE_CHUNK", 6)  # 7 chunks
    steps: list[tuple[str, int, int]] = []
    with limit_threads(threads):
        obs = observe(
            bigru,
            members,
            nonmembers,
            rewrites=4,
            seed=0,
            batch_size=5,
            progress=lambda *a: steps.append(a),
        )
    np.testing.assert_allclose(obs.variant_logits, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(obs.variant_owner, owner)
    assert [e.ids for e in obs.variant_encodings] == [e.ids for e in bigru.encode(variants)]
    assert ("rewriting functions", 7, 7) in steps


@pytest.mark.parametrize("threads", [1, 2])
def test_boundary_chains_in_chunks_equal_one_piece(
    bigru, samples: tuple, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from codeaudit.membership.attacks import label_only

    predicted = infer(bigru, tuple(bigru.encode(samples))).logits.argmax(axis=1)
    monkeypatch.setattr(label_only, "CHAIN_CHUNK", len(samples))
    whole = label_only.rewrites_to_flip(bigru, samples, predicted, max_rewrites=6, seed=3)
    monkeypatch.setattr(label_only, "CHAIN_CHUNK", 4)
    made: list[int] = []
    real = label_only.Sample

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(label_only, "Sample", counting)
    with limit_threads(threads):
        chunked = label_only.rewrites_to_flip(bigru, samples, predicted, max_rewrites=6, seed=3)
    np.testing.assert_array_equal(chunked, whole)
    assert len(made) > len(samples)  # the chains were written again, not cached
    assert set(whole.tolist()) - {7.0}  # some label flips within the chain
