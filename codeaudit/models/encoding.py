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

:func:`encode_chunks` encodes a sequence of chunks for a caller that works on each in turn
(``predict`` runs inference on it): with ``ahead``, one helper process of the run (spawned, it
imports the lexer and the tokenizer, not torch) encodes the next chunks while the caller works on
the current one. The encodings are the same, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
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

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is held (not counted as a hit or a miss, not made recent)."""
        return key in self._items

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
    _helper: Executor | None = None
    #: The helper process could not run (it died, or could not start: spawning from a script
    #: without the ``if __name__ == "__main__"`` guard); the run encodes in its own process.
    helper_failed: bool = False

    def pool(self) -> Executor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def helper(self) -> Executor:
        """The run's one encoding helper process (for :func:`encode_chunks`), started on first
        use; it ignores SIGINT, so an interrupt reaches the parent, which shuts it down."""
        if self._helper is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._helper = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        return self._helper

    def close(self) -> None:
        for pool in (self._pool, self._helper):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._helper = None


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


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    tokenizer: ModelTokenizer,
    items: Sequence[tuple[str, str]],
    max_len: int,
    *,
    known: Mapping[tuple[str, int, str, bytes], Encoding] | None = None,
) -> list[Encoding]:
    """``tokenizer.encode(code, lang, max_len)`` for each ``(code, lang)``, in order: through the
    current run's cache, and by its workers when many are left (identical results). ``known``:
    encodings already made elsewhere (by :func:`cache_key`), taken instead of encoding again."""
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
    fresh: dict[tuple[str, int, str, bytes], Encoding] = {}
    if known:
        fresh = {key: known[key] for key in todo if key in known}
    firsts = [i for key, i in todo.items() if key not in fresh]
    work = [items[i] for i in firsts]
    if run.workers > 1 and len(work) >= PARALLEL_MIN:
        done = _encode_parallel(run, tokenizer, fingerprint, work, max_len)
    else:
        done = [tokenizer.encode(code, lang, max_len) for code, lang in work]
    fresh.update({keys[i]: enc for i, enc in zip(firsts, done, strict=True)})
    for key, enc in fresh.items():
        cache.put(key, enc)
    for i in missing:
        out[i] = fresh[keys[i]]
    return [enc for enc in out if enc is not None]


#: Chunks the helper process of :class:`ChunkEncoder` is given ahead of the caller: it encodes
#: one and holds the others (only these chunks' ids are held at a time, besides the caller's).
AHEAD_DEPTH = 8
#: Chunks :class:`ChunkEncoder`'s caller encodes itself before the helper's first: the helper
#: takes a few tenths of a second to start, about what encoding two chunks takes.
CALLER_FIRST = 2


class ChunkEncoder:
    """:func:`encode_many` of each chunk, in order, for a caller that works on one chunk at a
    time (``predict`` runs inference on it)::

        with ChunkEncoder(tokenizer, chunks, max_len, ahead=True) as encoder:
            for encodings in encoder:
                ...  # encoder.busy(): the helper is encoding later chunks right now

    With ``ahead`` (inside a run, more than :data:`CALLER_FIRST` chunks), the caller encodes the
    first chunks itself while the run's helper process starts, and the helper encodes the later
    ones, up to :data:`AHEAD_DEPTH` chunks ahead of the caller; a chunk the helper has not
    started when the caller needs it is taken back and encoded by the caller. The encodings are
    those of the serial path (the same tokenizer state, the same code) and go through the run's
    cache alike; an error in the helper is raised by the iteration, at the chunk it was
    encoding. Leaving the block early (an error in the caller, an interrupt) cancels the chunks
    the helper has not started; the run shuts the helper down when it ends. A helper that
    breaks (killed, or unable to start) is not an encoding error: the caller encodes what is
    left, and the run starts no other."""

    def __init__(
        self,
        tokenizer: ModelTokenizer,
        chunks: Sequence[Sequence[tuple[str, str]]],
        max_len: int,
        *,
        ahead: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.chunks = chunks
        self.max_len = max_len
        self._run = _RUN.get()
        self.ahead = (
            ahead
            and self._run is not None
            and not self._run.helper_failed
            and len(chunks) > CALLER_FIRST
        )
        self._pending: dict[int, tuple[list[tuple[str, str]], Future[list[Encoding]]]] = {}

    def __enter__(self) -> ChunkEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def busy(self) -> bool:
        """Whether the helper process is encoding (or has queued) a chunk not yet taken."""
        return any(not future.done() for _, future in self._pending.values())

    def close(self) -> None:
        for _, future in self._pending.values():
            future.cancel()
        self._pending.clear()

    def _helper_failed(self) -> None:
        """The helper process broke: every chunk not yet taken is encoded by the caller (the
        same encodings, only later), and the run starts no other helper."""
        assert self._run is not None
        self._run.helper_failed = True
        self.close()

    def _submit(self, index: int, fingerprint: str, state: dict[str, Any]) -> None:
        assert self._run is not None
        if index >= len(self.chunks) or self._run.helper_failed:
            return
        cache = self._run.cache
        todo: dict[tuple[str, int, str, bytes], tuple[str, str]] = {}
        for code, lang in self.chunks[index]:
            key = cache_key(fingerprint, self.max_len, lang, code)
            if key not in cache:
                todo.setdefault(key, (code, lang))
        work = list(todo.values())
        if work:
            try:
                future = self._run.helper().submit(
                    _encode_chunk, fingerprint, state, self.max_len, work
                )
            except BrokenExecutor:
                self._helper_failed()
                return
            self._pending[index] = (work, future)

    def __iter__(self) -> Iterator[list[Encoding]]:
        tokenizer, max_len = self.tokenizer, self.max_len
        if not self.ahead:
            for chunk in self.chunks:
                yield encode_many(tokenizer, chunk, max_len)
            return
        fingerprint = tokenizer_fingerprint(tokenizer)
        state = tokenizer.to_state()
        for index in range(CALLER_FIRST, CALLER_FIRST + AHEAD_DEPTH):
            self._submit(index, fingerprint, state)
        for index, chunk in enumerate(self.chunks):
            known: dict[tuple[str, int, str, bytes], Encoding] | None = None
            if index in self._pending:
                work, future = self._pending[index]
                if future.cancel():  # not started yet: the caller encodes it below
                    del self._pending[index]
                else:
                    try:
                        done = future.result()
                    except BrokenExecutor:
                        self._helper_failed()
                    else:
                        del self._pending[index]
                        known = {
                            cache_key(fingerprint, max_len, lang, code): enc
                            for (code, lang), enc in zip(work, done, strict=True)
                        }
            if index >= CALLER_FIRST:
                self._submit(index + AHEAD_DEPTH, fingerprint, state)
            yield encode_many(tokenizer, chunk, max_len, known=known)
