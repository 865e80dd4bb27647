"""Which samples a model trained on and which it validated on, as content fingerprints.

``codeaudit train`` records them in the checkpoint's metadata (``split``), so that a later
``codeaudit membership`` can tell when ``--members`` holds samples that were held out for
validation (non-members) or ``--nonmembers`` holds training samples. No code is stored: a
fingerprint is the first 16 hex digits (64 bits) of the sha256 of the function's code with
whitespace runs collapsed (the same notion of "the same function" as the membership overlap
check). Ids are left out on purpose: a function the model trained on is a member whatever it is
called, and a data file re-exported with new ids still matches.

Layout, plain lists and strings (``torch.load(weights_only=True)`` reads it)::

    "split": {
      "scheme": "sha256-ws-16",
      "limit": 200000,
      "train": [sorted unique fingerprints] | None,   # None: more than ``limit``
      "val": [sorted unique fingerprints] | None,     # [] when nothing was held out
      "n_train": 1800, "n_val": 200,
    }

The training list is bounded (:data:`LIMIT` distinct fingerprints, about 4 MB of checkpoint);
beyond it only the validation list is kept (with ``train_ids_sha256`` as before), which still
finds held-out members but can no longer check members that were never seen or non-members
that were trained on. Checkpoints written before this record load as before (no ``split``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from codeaudit.data.samples import Dataset

SCHEME = "sha256-ws-16"
LIMIT = 200_000


def fingerprint(code: str) -> str:
    """The 16-hex-digit content fingerprint of one function's code."""
    text = " ".join(code.split()).encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:16]


def _fingerprints(dataset: Dataset | None, limit: int) -> list[str] | None:
    if dataset is None:
        return []
    found = sorted({fingerprint(s.code) for s in dataset.samples})
    return found if len(found) <= limit else None


def split_record(train: Dataset, val: Dataset | None, *, limit: int = LIMIT) -> dict[str, Any]:
    """The ``split`` metadata for a model trained on ``train`` and validated on ``val``."""
    return {
        "scheme": SCHEME,
        "limit": limit,
        "train": _fingerprints(train, limit),
        "val": _fingerprints(val, limit),
        "n_train": len(train),
        "n_val": len(val) if val is not None else 0,
    }


@dataclass(frozen=True)
class SplitRecord:
    """A checkpoint's recorded split, read back. ``train`` is None when the training list was
    over the bound (only the validation list was kept)."""

    train: frozenset[str] | None
    val: frozenset[str]
    n_train: int
    n_val: int

    @classmethod
    def from_metadata(cls, metadata: Any) -> SplitRecord | None:
        """The record in a checkpoint's metadata; None when there is none (an older codeaudit,
        a foreign model) or it is not one this version reads."""
        record = metadata.get("split") if isinstance(metadata, dict) else None
        if not isinstance(record, dict) or record.get("scheme") != SCHEME:
            return None
        train, val = record.get("train"), record.get("val")
        if not _is_list(val) or not (train is None or _is_list(train)):
            return None
        return cls(
            train=frozenset(train) if train is not None else None,
            val=frozenset(val),
            n_train=_count(record.get("n_train")),
            n_val=_count(record.get("n_val")),
        )

    def trained_on(self, code: str) -> bool | None:
        """Whether the model trained on this code; None when the record cannot say."""
        if self.train is None:
            return None
        return fingerprint(code) in self.train

    def held_out(self, code: str) -> bool:
        """Whether this code was held out for validation and not also trained on."""
        key = fingerprint(code)
        return key in self.val and (self.train is None or key not in self.train)


def _is_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
