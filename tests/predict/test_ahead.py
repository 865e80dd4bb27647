"""Encoding ahead of inference (a helper process) gives what the serial path gives, in order,
raises the helper's errors, and leaves no thread, process or thread setting behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from codeaudit.data.samples import Dataset, Sample
from codeaudit.data.synthetic import generate
from codeaudit.errors import LanguageError
from codeaudit.lang.lexer import lex
from codeaudit.models.encoding import ChunkEncoder, encode_many, encoding_run
from codeaudit.models.tokenizer import VocabTokenizer
from codeaudit.predict.engine import predict_dataset
from codeaudit.threads import limit_threads


def _items(n: int, seed: int = 11) -> list[tuple[str, str]]:
    return [(r["func"], "c") for r in generate(n, seed)]


def _tokenizer(items: list[tuple[str, str]]) -> VocabTokenizer:
    return VocabTokenizer.build([lex(c, lang).tokens for c, lang in items[:20]], max_size=200)


def _chunks(items: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.ident is not None}


def test_chunks_come_in_order_with_the_serial_encodings() -> None:
    items = _items(60)
    items = items + items[:7]  # a function in two chunks, and twice in one
    chunks = _chunks(items, 9)
    tok = _tokenizer(items)
    serial = [[tok.encode(c, lang, 96) for c, lang in chunk] for chunk in chunks]
    before = _threads()
    with encoding_run() as run:
        encode_many(tok, items[10:14], 96)  # some already cached
        with ChunkEncoder(tok, chunks, 96, ahead=True) as encoder:
            assert encoder.ahead
            got = list(encoder)
            assert not encoder.busy()
        assert got == serial
        assert len(run.cache) == len(set(items))
    assert _threads() == before


def test_without_a_run_or_ahead_it_is_the_serial_path() -> None:
    items = _items(12)
    tok = _tokenizer(items)
    chunks = _chunks(items, 5)
    serial = [[tok.encode(c, lang, 64) for c, lang in chunk] for chunk in chunks]
    with ChunkEncoder(tok, chunks, 64, ahead=True) as encoder:
        assert not encoder.ahead  # no run: no helper
        assert list(encoder) == serial
    with encoding_run(), ChunkEncoder(tok, chunks, 64, ahead=False) as encoder:
        assert list(encoder) == serial and not encoder.busy()


def test_an_error_in_the_helper_is_raised_at_its_chunk() -> None:
    items = _items(20)
    tok = _tokenizer(items)
    chunks = _chunks(items, 5)
    chunks[2] = [*chunks[2][:2], ("int f(void) { return 0; }", "cobol"), *chunks[2][2:]]
    before = _threads()
    got = []
    with (
        encoding_run(),
        pytest.raises(LanguageError, match="cobol"),
        ChunkEncoder(tok, chunks, 64, ahead=True) as encoder,
    ):
        for encodings in encoder:
            got.append(encodings)
    assert got == [[tok.encode(c, lang, 64) for c, lang in chunk] for chunk in chunks[:2]]
    assert _threads() == before


def test_leaving_early_cancels_and_leaves_nothing_running() -> None:
    items = _items(40)
    tok = _tokenizer(items)
    before = _threads()
    with encoding_run() as run:
        with ChunkEncoder(tok, _chunks(items, 4), 64, ahead=True) as encoder:
            for _ in encoder:
                break
        assert not encoder._pending
        assert run._helper is not None
    assert run._helper is None
    assert _threads() == before


def _model(tiny_config, tmp_path: Path, arch: str, items):  # type: ignore[no-untyped-def]
    from codeaudit.train.trainer import build_model

    torch.manual_seed(0)
    config = tiny_config(arch, tmp_path / "unused.jsonl", tmp_path / "unused.pt")
    return build_model(config, [lex(c, "c").tokens for c, _ in items[:30]], "c")


def _dataset(items: list[tuple[str, str]]) -> Dataset:
    samples = [Sample(f"s{i}", code, i % 2, "c") for i, (code, _) in enumerate(items)]
    return Dataset(tuple(samples))


@pytest.mark.parametrize("arch", ["lstm", "bigru"])
def test_predict_ahead_is_bit_identical_to_serial(tiny_config, tmp_path: Path, arch: str) -> None:  # type: ignore[no-untyped-def]
    items = _items(90, seed=3)
    model = _model(tiny_config, tmp_path, arch, items)
    data = _dataset(items)
    before_threads = torch.get_num_threads()
    serial = predict_dataset(model, data, batch_size=8, ahead=False, chunk_size=2048)
    seen: list[int] = []
    with limit_threads(2):
        ahead = predict_dataset(
            model,
            data,
            batch_size=8,
            ahead=True,
            chunk_size=16,
            progress=lambda d, n: seen.append(d),
        )
        assert torch.get_num_threads() == 2
    assert ahead == serial
    assert seen == sorted(seen) and seen[-1] == len(items)
    with limit_threads(2):
        unshared = predict_dataset(
            model, data, batch_size=8, ahead=True, chunk_size=16, share_threads=False
        )
    assert unshared == serial
    assert torch.get_num_threads() == before_threads


def test_predict_interrupted_restores_threads(tiny_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    items = _items(40, seed=4)
    model = _model(tiny_config, tmp_path, "lstm", items)
    before = _threads()

    def stop(done: int, _n: int) -> None:
        if done >= 16:
            raise KeyboardInterrupt

    with limit_threads(2):
        with pytest.raises(KeyboardInterrupt):
            predict_dataset(
                model, _dataset(items), batch_size=8, ahead=True, chunk_size=8, progress=stop
            )
        assert torch.get_num_threads() == 2
    assert _threads() == before


def test_a_broken_helper_leaves_the_work_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from codeaudit.models import encoding

    class Broken:
        def submit(self, *args: object) -> None:
            raise BrokenProcessPool("no helper here")

        def shutdown(self, **kwargs: object) -> None:
            pass

    items = _items(30)
    tok = _tokenizer(items)
    chunks = _chunks(items, 4)
    monkeypatch.setattr(encoding.EncodingRun, "helper", lambda self: Broken())
    with encoding_run() as run:
        with ChunkEncoder(tok, chunks, 64, ahead=True) as encoder:
            got = list(encoder)
        assert run.helper_failed
        assert not ChunkEncoder(tok, chunks, 64, ahead=True).ahead
    assert got == [[tok.encode(c, lang, 64) for c, lang in chunk] for chunk in chunks]


def test_chunks_the_helper_has_not_started_are_taken_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import Future

    from codeaudit.models import encoding

    submitted: list[Future[object]] = []

    class Idle:  # a helper that never starts anything
        def submit(self, *args: object) -> Future[object]:
            submitted.append(Future())
            return submitted[-1]

        def shutdown(self, **kwargs: object) -> None:
            pass

    items = _items(30)
    tok = _tokenizer(items)
    chunks = _chunks(items, 3)
    monkeypatch.setattr(encoding.EncodingRun, "helper", lambda self: Idle())
    with encoding_run() as run, ChunkEncoder(tok, chunks, 64, ahead=True) as encoder:
        got = list(encoder)
        assert not run.helper_failed
    assert got == [[tok.encode(c, lang, 64) for c, lang in chunk] for chunk in chunks]
    assert len(submitted) == len(chunks) - encoding.CALLER_FIRST
    assert all(future.cancelled() for future in submitted)
