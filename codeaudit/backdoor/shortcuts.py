"""Data shortcuts: identifier pieces that the defender's own clean data ties to one label.

A trigger-inversion scan finds whatever short token sequence flips the model. On real data the
cheapest such sequence is often not a planted trigger but a *natural* one: a name that the
training data itself shows only with one label. Juliet's "good" variants, for instance, branch on
``globalFalse`` and ``STATIC_CONST_FALSE`` and count with ``k``; a model learns those names as
"not vulnerable" exactly as it learns a planted trigger, and inverting a trigger on such a model
recovers them, on clean and backdoored models alike (docs/backdoor-results.md).

The defender's clean data (``backdoor --data``) shows which names are like that. For every
contiguous run of up to ``max_n`` identifier-piece ids in the encoded functions, this module
counts the functions of each label that contain it. A run is a shortcut toward label ``t`` when

* at least ``min_support`` functions with label ``t`` contain it,
* at least ``purity`` of the functions that contain it have label ``t``, and
* that share is unlikely under the data's label base rate (one-sided binomial test,
  p <= ``alpha``),

so a name seen in a handful of functions of both labels, or a few by chance, is not one. The scan
then searches only triggers with no shortcut toward the target inside (a trigger that contains
one explains its effect by the data, not by poisoning), and reports the strongest shortcuts with
their own flip rate: a model that a data-set artifact flips is worth knowing about, but it is a
different finding from a planted backdoor. A planted trigger is, by construction, absent from the
defender's clean data (or not label-pure in it), so it stays searchable; a trigger an attacker
chose among the data's own label-pure names is not, which is why ``--keep-shortcuts`` exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

MIN_SUPPORT = 3
PURITY = 0.9
ALPHA = 0.05
MAX_N = 5


def _key(ids: Iterable[int], base: int) -> int:
    """The exact key of one run of ids (as :func:`_pack` gives it)."""
    key = 0
    for t in ids:
        key = key * base + int(t)
    return key


def _pack(windows: np.ndarray, base: int) -> np.ndarray:
    """Exact int64 keys of id windows [M, n] (``base`` ** n < 2 ** 63)."""
    keys = np.zeros(len(windows), dtype=np.int64)
    for col in range(windows.shape[1]):
        keys = keys * base + windows[:, col]
    return keys


class ShortcutIndex:
    """Label counts of identifier-piece runs in labelled encoded functions.

    ``rows`` are the functions' id sequences, ``labels`` their labels, ``piece_ids`` the ids
    that count as identifier pieces (the trigger vocabulary). Runs never span a non-piece id."""

    def __init__(
        self,
        rows: Sequence[Sequence[int]],
        labels: Sequence[int],
        piece_ids: Iterable[int],
        vocab_size: int,
        *,
        max_n: int = MAX_N,
        min_support: int = MIN_SUPPORT,
        purity: float = PURITY,
        alpha: float = ALPHA,
    ) -> None:
        if len(rows) != len(labels):
            raise ValueError("one label per row")
        self.base = max(2, int(vocab_size))
        fit = max(1, int(63 / math.log2(self.base + 1)))
        self.max_n = max(1, min(int(max_n), fit))
        self.min_support = int(min_support)
        self.purity = float(purity)
        self.alpha = float(alpha)
        self.labels = sorted({int(v) for v in labels})
        label_arr = np.asarray(labels, dtype=np.int64)
        self.base_rate = {t: float(np.mean(label_arr == t)) for t in self.labels}
        pieces = np.zeros(self.base, dtype=bool)
        ids = np.fromiter((int(i) for i in piece_ids), dtype=np.int64)
        pieces[ids[(ids >= 0) & (ids < self.base)]] = True
        prepared = []  # (ids, is-piece mask, label) per function, for every run length
        for row, label in zip(rows, label_arr, strict=True):
            arr = np.asarray(row, dtype=np.int64)
            arr = np.where((arr >= 0) & (arr < self.base), arr, 0)
            prepared.append((arr, pieces[arr], label))
        # per n: unique keys and their per-label document counts
        self._counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for n in range(1, self.max_n + 1):
            keys_all: list[np.ndarray] = []
            labs_all: list[np.ndarray] = []
            for arr, ok, label in prepared:
                if len(arr) < n:
                    continue
                win = np.lib.stride_tricks.sliding_window_view(arr, n)
                good = np.lib.stride_tricks.sliding_window_view(ok, n).all(axis=1)
                if not good.any():
                    continue
                keys = np.unique(_pack(win[good], self.base))
                keys_all.append(keys)
                labs_all.append(np.full(len(keys), label, dtype=np.int64))
            if not keys_all:
                self._counts[n] = (np.zeros(0, np.int64), np.zeros((0, len(self.labels)), np.int64))
                continue
            keys_cat = np.concatenate(keys_all)
            labs_cat = np.concatenate(labs_all)
            uniq, inverse = np.unique(keys_cat, return_inverse=True)
            counts = np.zeros((len(uniq), len(self.labels)), dtype=np.int64)
            for j, t in enumerate(self.labels):
                np.add.at(counts[:, j], inverse[labs_cat == t], 1)
            self._counts[n] = (uniq, counts)
        self._forbidden: dict[int, dict[int, frozenset[int]]] = {}

    def _column(self, target: int) -> int | None:
        return self.labels.index(target) if target in self.labels else None

    def forbidden(self, target: int) -> dict[int, frozenset[int]]:
        """Packed keys, per run length, of the shortcuts toward ``target``."""
        if target in self._forbidden:
            return self._forbidden[target]
        from scipy.stats import binom

        col = self._column(target)
        out: dict[int, frozenset[int]] = {}
        for n, (uniq, counts) in self._counts.items():
            if col is None or not len(uniq):
                out[n] = frozenset()
                continue
            nt = counts[:, col]
            total = counts.sum(axis=1)
            share = nt / np.maximum(total, 1)
            p = binom.sf(nt - 1, total, self.base_rate[target])
            mask = (nt >= self.min_support) & (share >= self.purity) & (p <= self.alpha)
            out[n] = frozenset(int(k) for k in uniq[mask])
        self._forbidden[target] = out
        return out

    def support(self, ids: Sequence[int], target: int) -> tuple[int, int]:
        """(functions with ``target`` containing the run, functions with another label)."""
        n = len(ids)
        if n not in self._counts or self._column(target) is None:
            return 0, 0
        uniq, counts = self._counts[n]
        key = _key(ids, self.base)
        k = int(np.searchsorted(uniq, key))
        if k >= len(uniq) or int(uniq[k]) != key:
            return 0, 0
        col = self._column(target)
        row = counts[k]
        return int(row[col]), int(row.sum() - row[col])

    def contains_shortcut(self, trigger: Sequence[int], target: int) -> bool:
        """Whether any contiguous run of ``trigger`` is a shortcut toward ``target``."""
        forbidden = self.forbidden(target)
        ids = [int(t) for t in trigger]
        for n in range(1, min(len(ids), self.max_n) + 1):
            keys = forbidden.get(n)
            if not keys:
                continue
            if any(
                _key(ids[start : start + n], self.base) in keys for start in range(len(ids) - n + 1)
            ):
                return True
        return False

    def single_pieces(self, target: int) -> frozenset[int]:
        """Piece ids that are shortcuts toward ``target`` on their own (never in an allowed
        trigger: the scan drops them from that pair's vocabulary)."""
        return self.forbidden(target).get(1, frozenset())

    def count(self, target: int) -> int:
        """How many runs (of every length) are shortcuts toward ``target``."""
        return sum(len(v) for v in self.forbidden(target).values())

    def strongest(self, target: int, limit: int = 10) -> list[tuple[tuple[int, ...], int, int]]:
        """The shortcuts toward ``target`` with the most support, as (ids, target support,
        other support); a run that contains an already listed one is skipped."""
        if self._column(target) is None:
            return []
        found: list[tuple[int, int, int, tuple[int, ...]]] = []
        for n, keys in self.forbidden(target).items():
            for key in keys:
                ids = _unpack(key, n, self.base)
                n_target, n_other = self.support(ids, target)
                found.append((-n_target, n, n_other, ids))
        found.sort()
        out: list[tuple[tuple[int, ...], int, int]] = []
        for neg, _, other, ids in found:
            if any(_contains(ids, kept) for kept, _, _ in out):
                continue
            out.append((ids, -neg, other))
            if len(out) >= limit:
                break
        return out


def _unpack(key: int, n: int, base: int) -> tuple[int, ...]:
    out = []
    for _ in range(n):
        key, rem = divmod(key, base)
        out.append(rem)
    return tuple(reversed(out))


def _contains(ids: Sequence[int], part: Sequence[int]) -> bool:
    m = len(part)
    return any(tuple(ids[i : i + m]) == tuple(part) for i in range(len(ids) - m + 1))
