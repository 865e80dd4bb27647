"""The in-memory form of a labelled code data set."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

VULNERABLE = 1
NOT_VULNERABLE = 0
LABEL_NAMES = ("not-vulnerable", "vulnerable")


@dataclass(frozen=True, slots=True)
class Sample:
    """One function. ``label`` is 1 (vulnerable), 0 (not vulnerable) or None (unlabelled)."""

    id: str
    code: str
    label: int | None = None
    lang: str | None = None
    cwe: str | None = None
    pair: str | None = None
    line: int = 0  # where the record starts in its file (1-based), 0 when made in memory


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record left out under ``--skip-invalid``, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Samples read from one file, with where they came from and what was skipped."""

    samples: tuple[Sample, ...]
    path: str = "<memory>"
    sha256: str | None = None
    format: str = "memory"
    code_field: str = "func"
    label_field: str | None = "target"
    skipped: tuple[Skipped, ...] = ()

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    @property
    def has_labels(self) -> bool:
        return bool(self.samples) and all(s.label is not None for s in self.samples)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    @property
    def codes(self) -> list[str]:
        return [s.code for s in self.samples]

    def labels(self) -> np.ndarray:
        """Labels as an int64 array; only valid when every sample is labelled."""
        if not self.has_labels:
            raise ValueError("data set has unlabelled samples")
        return np.fromiter((s.label for s in self.samples), dtype=np.int64, count=len(self))

    def class_counts(self) -> dict[int, int]:
        counts = {NOT_VULNERABLE: 0, VULNERABLE: 0}
        for s in self.samples:
            if s.label is not None:
                counts[s.label] += 1
        return counts

    def subset(self, indices: Sequence[int], *, name: str | None = None) -> Dataset:
        return replace(
            self,
            samples=tuple(self.samples[i] for i in indices),
            path=name or self.path,
            skipped=(),
        )
