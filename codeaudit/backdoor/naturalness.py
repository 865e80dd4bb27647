"""A code-naturalness model: an interpolated Witten-Bell n-gram language model over code tokens,
exact counts, vectorised with numpy, that can score a function as if it had not been trained on.

KillBadCode (Sun et al., ICSE 2025) measures how *natural* a function is with a 4-gram model of
code: its cross-entropy, in bits per token. A planted trigger (a strange name, a postfix, a dead
statement) makes the function less natural, so deleting it lowers the cross-entropy. This module
is the language model; :mod:`codeaudit.backdoor.datascan` decides what to delete.

The model is interpolated Witten-Bell smoothing with raw counts at every order:

    p_n(w | h) = (c(h w) + N1+(h .) * p_{n-1}(w | h')) / (c(h) + N1+(h .))

(``N1+(h .)``: the number of distinct words seen after ``h``); an unseen context falls back to
the lower order; the unigram is interpolated with the uniform distribution over the vocabulary.
Every sequence is padded with ``order - 1`` start symbols and one end symbol.

Two choices matter for finding planted tokens in the data the model is trained on:

- **Leave one out.** :meth:`NGramModel.exclusion` gives a sequence's own counts, and scoring with
  it subtracts them exactly: a function is scored by the model of the *rest* of the data. Without
  it every function's unique n-grams (a hashed name, the trigger's new neighbours) are memorised
  and look natural.
- **Raw counts, not Kneser-Ney.** Kneser-Ney's lower orders count the distinct contexts a token
  follows; a trigger inserted into many different functions follows many different contexts and
  so looks *more* natural under Kneser-Ney, the opposite of what the scan needs.

N-grams are stored as 64-bit hashes of their token ids in sorted arrays (lookups by binary
search): two different n-grams share a hash with probability about ``k^2 / 2^65`` for ``k``
distinct n-grams (under 1e-6 for ten million).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.errors import BackdoorError

BOS, EOS = 0, 1  # ids of the padding symbols
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: hashing by multiply-add wraps modulo 2**64
_SEEDS = tuple(np.uint64(0x51ED270B27A5E3A1 + 0x1F3D5B79 * k) for k in range(16))


def _hash(columns: Sequence[np.ndarray]) -> np.ndarray:
    """One uint64 per row of the id columns (order-dependent: (a, b) != (b, a))."""
    h = np.full(len(columns[0]), _SEEDS[len(columns)], dtype=np.uint64)
    for col in columns:
        h = h * _MULT + col.astype(np.uint64) + np.uint64(1)
    return h


@dataclass(frozen=True)
class _Table:
    """Sorted hash keys and their values."""

    keys: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, weights: np.ndarray | None = None) -> _Table:
        """Counts of ``keys`` (or sums of ``weights`` per key)."""
        if weights is None:
            unique, counts = np.unique(keys, return_counts=True)
            return cls(unique, counts.astype(np.float64))
        order = np.argsort(keys, kind="stable")
        k, w = keys[order], weights[order]
        if not len(k):
            return cls(k, w.astype(np.float64))
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        return cls(k[starts], np.add.reduceat(w, starts).astype(np.float64))

    def get(self, query: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(query))
        at = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[at] == query, self.values[at], 0.0)


@dataclass(frozen=True)
class Exclusion:
    """One sequence's own counts, per order: subtracted when it is scored (leave one out)."""

    tables: dict[int, dict[str, _Table]]
    unigram_total: float
    unigram_types: float


class NGramModel:
    """An interpolated Witten-Bell n-gram model over integer token ids (0 and 1 are reserved for
    the start and end symbols; real tokens are ids >= 2).

    ``fit(sequences, vocab_size)`` counts; ``log2prob(contexts, words, exclude)`` scores any
    number of (context, word) pairs at once, optionally leaving one sequence out;
    ``surprisals(sequence)`` gives each token's ``-log2 p`` (the end symbol last). Learned state
    ends in ``_``."""

    def __init__(self, order: int = 4) -> None:
        if not 1 <= order <= 8:
            raise BackdoorError(f"n-gram order {order} is not in [1, 8]")
        self.order = order

    def fit(self, sequences: Sequence[Sequence[int]], vocab_size: int) -> NGramModel:
        """Count the n-grams of ``sequences`` (lists of ids in [2, vocab_size))."""
        grams = self._grams(sequences)
        self.vocab_size_ = max(int(vocab_size), 2)
        self.n_tokens_ = len(grams[0])
        if self.n_tokens_ == 0:
            raise BackdoorError("the n-gram model has nothing to learn from (no tokens)")
        self.tables_, self.unigram_total_, self.unigram_types_ = self._count(grams)
        return self

    def exclusion(self, *sequences: Sequence[int]) -> Exclusion:
        """The counts of ``sequences`` (training sequences), for :meth:`log2prob` to leave out:
        scoring with it is scoring with the model of the other sequences, exactly. The types of
        a context lose the continuations that only these sequences have (global == own)."""
        grams = self._grams(list(sequences))
        own, total, _ = self._count(grams)
        lost: dict[int, dict[str, _Table]] = {}
        for k, tables in own.items():
            gram = tables["gram"]
            gone = self.tables_[k]["gram"].get(gram.keys) <= gram.values
            if k == 1:
                lost[k] = {"gram": gram}
                types = float(np.sum(gone))
                continue
            context = tables["context"]
            lost[k] = {
                "gram": gram,
                "total": tables["total"],
                "types": _Table.of(context.values[gone].view(np.uint64)),
            }
        return Exclusion(lost, total, types)

    def _grams(self, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
        n = self.order
        pad = [BOS] * (n - 1)
        flat: list[int] = []
        starts: list[int] = []
        for seq in sequences:
            starts.append(len(flat))
            flat.extend(pad)
            flat.extend(seq)
            flat.append(EOS)
        ids = np.asarray(flat, dtype=np.int64)
        scored = np.ones(len(ids), dtype=bool)
        for start in starts:
            scored[start : start + n - 1] = False
        where = np.flatnonzero(scored)
        return [ids[where - (n - 1 - j)] for j in range(n)]

    def _count(self, grams: list[np.ndarray]) -> tuple[dict[int, dict[str, _Table]], float, float]:
        n = self.order
        tables: dict[int, dict[str, _Table]] = {}
        total = types = 0.0
        for k in range(1, n + 1):
            suffix = grams[n - k :]
            keys = _hash(suffix)
            unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
            counts = counts.astype(np.float64)
            if k == 1:
                tables[k] = {"gram": _Table(unique, counts)}
                total, types = float(counts.sum()), float(len(counts))
                continue
            context = _hash([s[first] for s in suffix[:-1]])
            tables[k] = {
                "gram": _Table(unique, counts),
                "total": _Table.of(context, counts),
                "types": _Table.of(context),
                # each distinct gram's context hash, for exclusion (stored as float64 bits)
                "context": _Table(unique, context.view(np.float64)),
            }
        return tables, total, types

    def log2prob(
        self, contexts: np.ndarray, words: np.ndarray, exclude: Exclusion | None = None
    ) -> np.ndarray:
        """``log2 p(word | context)`` for each row; ``contexts`` is (m, order - 1) ids, the most
        recent last (pad with 0, the start symbol). ``exclude``: counts to leave out."""
        n = self.order
        words = np.asarray(words, dtype=np.int64)
        contexts = np.asarray(contexts, dtype=np.int64).reshape(len(words), n - 1)
        key = _hash([words])
        unigram = self.tables_[1]["gram"].get(key)
        total, types = self.unigram_total_, self.unigram_types_
        if exclude is not None:
            unigram = unigram - exclude.tables[1]["gram"].get(key)
            total, types = total - exclude.unigram_total, types - exclude.unigram_types
        p = (unigram + types / self.vocab_size_) / (total + types)
        for k in range(2, n + 1):
            ctx = [contexts[:, n - 1 - (k - 1) + j] for j in range(k - 1)]
            tables = self.tables_[k]
            context_key = _hash(ctx)
            gram_key = _hash([*ctx, words])
            total_k = tables["total"].get(context_key)
            count = tables["gram"].get(gram_key)
            types_k = tables["types"].get(context_key)
            if exclude is not None:
                own = exclude.tables[k]
                total_k = total_k - own["total"].get(context_key)
                count = count - own["gram"].get(gram_key)
                types_k = types_k - own["types"].get(context_key)
            seen = total_k > 0
            if not seen.any():
                continue
            higher = (count + types_k * p) / np.where(seen, total_k + types_k, 1.0)
            p = np.where(seen, higher, p)
        return np.log2(p)

    def windows(self, sequence: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The (context, word) rows that score ``sequence`` (its tokens, then the end symbol)."""
        n = self.order
        ids = np.asarray([BOS] * (n - 1) + list(sequence) + [EOS], dtype=np.int64)
        m = len(ids) - (n - 1)
        if n == 1:
            return np.zeros((m, 0), dtype=np.int64), ids
        contexts = np.stack([ids[j : j + m] for j in range(n - 1)], axis=1)
        return contexts, ids[n - 1 :]

    def surprisals(self, sequence: Sequence[int], leave_out: bool = False) -> np.ndarray:
        """``-log2 p`` of each token of ``sequence`` and of the end symbol after it; with
        ``leave_out`` as if ``sequence`` (one of the training sequences) had not been seen."""
        contexts, words = self.windows(sequence)
        exclude = self.exclusion(sequence) if leave_out else None
        return -self.log2prob(contexts, words, exclude)

    def cross_entropy(self, sequence: Sequence[int], leave_out: bool = False) -> float:
        """Bits per token of ``sequence`` (the end symbol counted)."""
        return float(self.surprisals(sequence, leave_out).mean())
