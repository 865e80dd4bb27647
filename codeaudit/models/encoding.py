"""Encoding many functions: once per run (a content-addressed cache), in parallel when many.

A command often encodes the same data file several times: membership encodes the members for
the features, again for each reference model and shadow; harden for calibration, verification
and the rewrite attacks; backdoor for each stage. Within one run (:func:`encoding_run`, opened
by :func:`codeaudit.runner.run` around a check), every encoding is kept in an
:class:`EncodingCache` keyed by what decides it: the tokenizer (a fingerprint of its state),
the id budget, the language and the SHA-256 of the code text. A second request is a lookup.
The cache belongs to the run and goes with it; outside a run nothing is cached.

Above :data:`PARALLEL_MIN` functions still to encode, and when the run allows more than one
thread, the functions are lexed and encoded by worker processes (spawned, so no state of the
parent is inherited), in chunks, results in input order: the encodings are the same as serial
ones, only sooner.
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from codeaudit.models.tokenizer import Encoding, ModelTokenizer, tokenizer_from_state

#: Most encodings an :class:`EncodingCache` holds (least recently used dropped first). Ids are
#: stored as 32-bit arrays: at 512 ids an entry is about 4 KiB, the cap about 64 MiB.
CACHE_MAX_ENTRIES = 16384
#: Functions still to encode above which worker processes do the work (their start costs
#: about a second).
PARALLEL_MIN = 2000
#: Functions per task sent to a worker (at least; more when the workers would get few each).
CHUNK_MIN = 256

_FINGERPRINT = "_codeaudit_fingerprint"


def tokenizer_fingerprint(tokenizer: ModelTokenizer) -> str:
    """SHA-256 of the tokenizer's state (its kind, vocabulary or tokenizer file, input format),
    computed once per tokenizer object."""
    cached = getattr(tokenizer, _FINGERPRINT, None)
    if isinstance(cached, str):
        return cached
    state = json.dumps(tokenizer.to_state(), sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()
    setattr(tokenizer, _FINGERPRINT, digest)
    return digest


def cache_key(fingerprint: str, max_len: int, lang: str, code: str) -> tuple[str, int, str, bytes]:
    """What decides an encoding (the tokenizer state includes its input format)."""
    return (
        fingerprint,
        int(max_len),
        lang,
        hashlib.sha256(code.encode("utf-8", "surrogatepass")).digest(),
    )


_Stored = tuple[array, array, int, bool, int]


class EncodingCache:
    """Encodings by content, least recently used dropped past ``max_entries``."""

    def __init__(self, max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self.max_entries = max(0, int(max_entries))
        self._items: OrderedDict[tuple[str, int, str, bytes], _Stored] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, int, str, bytes]) -> Encoding | None:
        stored = self._items.get(key)
        if stored is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        ids, index, n_code_tokens, truncated, n_unknown = stored
        return Encoding(tuple(ids), tuple(index), n_code_tokens, truncated, n_unknown)

    def put(self, key: tuple[str, int, str, bytes], encoding: Encoding) -> None:
        if self.max_entries == 0:
            return
        self._items[key] = (
            array("q", encoding.ids),
            array("q", encoding.token_index),
            encoding.n_code_tokens,
            encoding.truncated,
            encoding.n_unknown,
        )
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


@dataclass
class EncodingRun:
    """What one run shares: its cache, its worker count, and (once needed) its worker pool."""

    cache: EncodingCache = field(default_factory=EncodingCache)
    workers: int = 1
    _pool: Executor | None = None

    def pool(self) -> Executor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_RUN: ContextVar[EncodingRun | None] = ContextVar("codeaudit_encoding_run", default=None)


@contextmanager
def encoding_run(workers: int = 1, cache: EncodingCache | None = None) -> Iterator[EncodingRun]:
    """Share one cache (and up to ``workers`` encoding processes) among every encoding made
    inside the block; both end with it."""
    run = EncodingRun(
        cache=cache if cache is not None else EncodingCache(), workers=max(1, workers)
    )
    token = _RUN.set(run)
    try:
        yield run
    finally:
        _RUN.reset(token)
        run.close()


def current_run() -> EncodingRun | None:
    return _RUN.get()


# -- worker side ---------------------------------------------------------------------------------
_WORKER_TOKENIZERS: dict[str, ModelTokenizer] = {}


def _encode_chunk(
    fingerprint: str, state: dict[str, Any], max_len: int, items: list[tuple[str, str]]
) -> list[Encoding]:
    tokenizer = _WORKER_TOKENIZERS.get(fingerprint)
    if tokenizer is None:  # one per worker process and tokenizer
        _WORKER_TOKENIZERS.clear()
        tokenizer = _WORKER_TOKENIZERS[fingerprint] = tokenizer_from_state(state)
    return [tokenizer.encode(code, lang, max_len) for code, lang in items]


def _encode_parallel(
    run: EncodingRun,
    tokenizer: ModelTokenizer,
    fingerprint: str,
    items: Sequence[tuple[str, str]],
    max_len: int,
) -> list[Encoding]:
    size = max(CHUNK_MIN, math.ceil(len(items) / (run.workers * 4)))
    state = tokenizer.to_state()
    chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
    pool = run.pool()
    futures = [pool.submit(_encode_chunk, fingerprint, state, max_len, chunk) for chunk in chunks]
    out: list[Encoding] = []
    for future in futures:
        out.extend(future.result())
    return out


def encode_many(
    tokenizer: ModelTokenizer, items: Sequence[tuple[str, str]], max_len: int
) -> list[Encoding]:
    """``tokenizer.encode(code, lang, max_len)`` for each ``(code, lang)``, in order: through the
    current run's cache, and by its workers when many are left (identical results)."""
    run = _RUN.get()
    if run is None:
        return [tokenizer.encode(code, lang, max_len) for code, lang in items]
    fingerprint = tokenizer_fingerprint(tokenizer)
    cache = run.cache
    keys = [cache_key(fingerprint, max_len, lang, code) for code, lang in items]
    out: list[Encoding | None] = [cache.get(key) for key in keys]
    missing = [i for i, enc in enumerate(out) if enc is None]
    todo: dict[tuple[str, int, str, bytes], int] = {}  # a function twice in the input: once
    for i in missing:
        todo.setdefault(keys[i], i)
    firsts = list(todo.values())
    work = [items[i] for i in firsts]
    if run.workers > 1 and len(work) >= PARALLEL_MIN:
        done = _encode_parallel(run, tokenizer, fingerprint, work, max_len)
    else:
        done = [tokenizer.encode(code, lang, max_len) for code, lang in work]
    fresh = {keys[i]: enc for i, enc in zip(firsts, done, strict=True)}
    for key, enc in fresh.items():
        cache.put(key, enc)
    for i in missing:
        out[i] = fresh[keys[i]]
    return [enc for enc in out if enc is not None]
