"""Per-sample model outputs for membership inference, from one forward pass per sample.

The four outputs of the membership paper: the penultimate representation (``embedding``), the
``logits``, the cross-entropy ``loss`` against the true label and the ``confidence`` (max softmax
probability); plus threshold signals derived from them (entropy, modified entropy, the logit-
scaled probability of the true label used by LiRA) and the unknown-token rate of the tokenizer,
a channel of its own (a vocabulary built on the training set marks non-members).

One further input block, ``probs-label``, is outside the 15 combinations of the four outputs:
the class probabilities (softmax of the logits) beside the one-hot true label, what ART's
black-box attack reads. Probabilities are bounded where log-probabilities (and the loss) have
long tails, which is what a distance-based attack model (k-NN, RBF SVM) needs to set its scale
by; :data:`codeaudit.membership.attacks.trained.DISTANCE_FEATURE_SETS` gives it to those.

Extraction streams the data in chunks (no whole-data-set token tensors) and is cached on disk
keyed by the model's sha256, the data's sha256 and the maximum length, so that a rerun with
other attacks does no inference.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codeaudit.data.samples import Dataset

if TYPE_CHECKING:  # torch loads with the model, not with this module
    from codeaudit.models.base import VPModel

FEATURES = ("embedding", "logits", "loss", "confidence")
#: Input blocks beyond the four outputs: not in :func:`all_feature_sets`' combinations, but
#: named in ``--features`` like them (alone or joined with them by ``+``).
EXTRA_BLOCKS = ("probs-label",)
BLOCKS = FEATURES + EXTRA_BLOCKS
#: What a block needs the model to release, in :func:`usable_features`' names (a block not
#: listed needs itself): the probabilities are what ``loss`` and ``confidence`` come from.
BLOCK_NEEDS = {"probs-label": "confidence"}
FEATURE_VERSION = 1  # bump when what is extracted changes (invalidates caches)
_EPS = 1e-12


#: What a query can return: a plain model exposes everything; a hardened model
#: (:mod:`codeaudit.defense`) lists what it releases in its ``exposes`` attribute.
FULL_ACCESS = ("label", "probs", "logits", "embedding", "tokenizer")


def usable_features(model: object) -> frozenset[str]:
    """The attack inputs a model's exposed outputs allow, in the names attacks declare:
    ``label`` (label-only attacks); ``loss``, ``confidence`` and ``logits`` from probabilities
    (for a model that releases probabilities only, ``logits`` are their logarithms, which is all
    an attacker can compute); ``embedding``; ``tokenizer`` (the unknown-token rate)."""
    exposes = set(getattr(model, "exposes", FULL_ACCESS))
    usable = set()
    if "label" in exposes:
        usable.add("label")
    if exposes & {"probs", "logits"}:
        usable |= {"loss", "confidence", "logits"}
    usable |= exposes & {"embedding", "tokenizer"}
    return frozenset(usable)


def feature_set_usable(feature_set: Sequence[str], usable: frozenset[str]) -> bool:
    """Whether the outputs ``usable`` (:func:`usable_features`) give every block of the set."""
    return all(BLOCK_NEEDS.get(name, name) in usable for name in feature_set)


def all_feature_sets() -> list[tuple[str, ...]]:
    """The 15 non-empty combinations of the four outputs, smallest first."""
    return [c for k in range(1, len(FEATURES) + 1) for c in combinations(FEATURES, k)]


def is_default_spec(spec: str | None) -> bool:
    """``--features`` left at its default (``None``, empty or ``all``)."""
    return spec is None or spec.strip() in ("", "all")


def parse_feature_sets(spec: str | None) -> list[tuple[str, ...]]:
    """``None``/``all`` -> all 15; else comma-separated sets of :data:`BLOCKS` joined by ``+``
    (``loss,logits+loss,probs-label``)."""
    from codeaudit.errors import UsageError

    if spec is None or is_default_spec(spec):
        return all_feature_sets()
    sets = []
    for part in spec.split(","):
        names = tuple(n.strip() for n in part.split("+") if n.strip())
        unknown = [n for n in names if n not in BLOCKS]
        if unknown or not names:
            raise UsageError(
                f"--features {spec!r}: unknown feature {', '.join(unknown) or '(empty)'} "
                f"(use {', '.join(BLOCKS)}, joined by + and separated by commas)"
            )
        ordered = tuple(f for f in BLOCKS if f in names)
        if ordered not in sets:
            sets.append(ordered)
    return sets


@dataclass(frozen=True)
class FeatureSet:
    """Outputs of one model on one data set, in the data set's order."""

    ids: tuple[str, ...]
    labels: np.ndarray  # [N] true class labels (1 = vulnerable)
    logits: np.ndarray  # [N, 2] float32
    embeddings: np.ndarray  # [N, D] float32
    unk_rate: np.ndarray  # [N] share of unknown ids
    n_ids: np.ndarray  # [N] ids after truncation
    truncated: np.ndarray  # [N] bool
    # Logits the model computes: 2, or 1 for a sigmoid model, whose logits are kept as [0, z]
    # (the same probabilities, loss and confidence as its sigmoid) and whose logit feature is z.
    n_outputs: int = 2

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted.astype(np.float64))
        return exp / exp.sum(axis=1, keepdims=True)

    @property
    def loss(self) -> np.ndarray:
        z = self.logits.astype(np.float64)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return log_norm - z[np.arange(len(z)), self.labels]

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return (self.predicted == self.labels).astype(np.float64)

    @property
    def entropy(self) -> np.ndarray:
        p = np.clip(self.probabilities, _EPS, 1.0)
        return -(p * np.log(p)).sum(axis=1)

    @property
    def modified_entropy(self) -> np.ndarray:
        """Song and Mittal (2021): -(1-p_y) log p_y - sum_{i != y} p_i log(1-p_i)."""
        p = np.clip(self.probabilities, _EPS, 1 - _EPS)
        rows = np.arange(len(p))
        p_y = p[rows, self.labels]
        other = -(p * np.log(1 - p)).sum(axis=1) + p_y * np.log(1 - p_y)
        return -(1 - p_y) * np.log(p_y) + other

    @property
    def true_class_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self)), self.labels]

    @property
    def label_one_hot(self) -> np.ndarray:
        """[N, 2] the true label, one-hot (column 1: vulnerable)."""
        return np.eye(2)[np.asarray(self.labels, dtype=np.int64)]

    @property
    def logit_scaled_confidence(self) -> np.ndarray:
        """LiRA's phi = log(p_y / (1 - p_y)), computed stably from the logits."""
        z = self.logits.astype(np.float64)
        rows = np.arange(len(z))
        return z[rows, self.labels] - z[rows, 1 - self.labels]

    def block(self, name: str) -> np.ndarray:
        """One output as a 2-D block of attack-model inputs."""
        if name == "embedding":
            return self.embeddings.astype(np.float64)
        if name == "logits":
            return self.logits[:, 2 - self.n_outputs :].astype(np.float64)
        if name == "loss":
            return self.loss[:, None]
        if name == "confidence":
            return self.confidence[:, None]
        if name == "probs-label":  # both probabilities, as ART reads them, for one logit too
            return np.hstack([self.probabilities, self.label_one_hot])
        raise KeyError(name)

    def subset(self, index: np.ndarray) -> FeatureSet:
        return FeatureSet(
            ids=tuple(self.ids[i] for i in index),
            labels=self.labels[index],
            logits=self.logits[index],
            embeddings=self.embeddings[index],
            unk_rate=self.unk_rate[index],
            n_ids=self.n_ids[index],
            truncated=self.truncated[index],
            n_outputs=self.n_outputs,
        )

    @staticmethod
    def concat(parts: Sequence[FeatureSet]) -> FeatureSet:
        outputs = {p.n_outputs for p in parts}
        if len(outputs) > 1:
            raise ValueError("cannot concatenate outputs of one- and two-logit models")
        return FeatureSet(
            ids=tuple(i for p in parts for i in p.ids),
            labels=np.concatenate([p.labels for p in parts]),
            logits=np.concatenate([p.logits for p in parts]),
            embeddings=np.concatenate([p.embeddings for p in parts]),
            unk_rate=np.concatenate([p.unk_rate for p in parts]),
            n_ids=np.concatenate([p.n_ids for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            n_outputs=outputs.pop() if outputs else 2,
        )


def extract_features(
    model: VPModel,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    chunk_size: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureSet:
    """One batched forward pass per sample, streamed in chunks of ``chunk_size`` samples."""
    n = len(dataset)
    if not dataset.has_labels:
        raise ValueError("membership features need labelled data")
    logits = np.zeros((n, 2), dtype=np.float32)
    embeddings: np.ndarray | None = None
    unk = np.zeros(n, dtype=np.float64)
    n_ids = np.zeros(n, dtype=np.int64)
    truncated = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk_size):
        chunk = dataset.samples[start : start + chunk_size]
        encodings = model.encode(chunk)
        from codeaudit.models.inference import infer

        out = infer(model, encodings, batch_size=batch_size, embeddings=True)
        stop = start + len(chunk)
        logits[start:stop] = out.logits
        assert out.embeddings is not None
        if embeddings is None:
            embeddings = np.zeros((n, out.embeddings.shape[1]), dtype=np.float32)
        embeddings[start:stop] = out.embeddings
        for offset, enc in enumerate(encodings):
            n_ids[start + offset] = len(enc.ids)
            unk[start + offset] = enc.n_unknown / max(1, len(enc.ids))
            truncated[start + offset] = enc.truncated
        if progress is not None:
            progress(stop, n)
    assert embeddings is not None
    return FeatureSet(
        ids=tuple(dataset.ids),
        labels=dataset.labels(),
        logits=logits,
        embeddings=embeddings,
        unk_rate=unk,
        n_ids=n_ids,
        truncated=truncated,
        n_outputs=int(getattr(model, "n_outputs", 2)),
    )


def cache_key(model_sha256: str, data_sha256: str | None, max_len: int, extra: str = "") -> str:
    text = f"v{FEATURE_VERSION}|{model_sha256}|{data_sha256}|{max_len}|{extra}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# A cache entry is untrusted (anyone who can write the cache directory wrote it): its arrays may
# inflate to at most this many bytes per sample (a 16,384-wide float32 embedding and change),
# plus CACHE_ENTRY_SLACK; larger, compressed beyond that, non-finite or misshapen entries are
# recomputed with a warning.
CACHE_BYTES_PER_SAMPLE = 64 << 10
CACHE_ENTRY_SLACK = 1 << 20
CACHE_ENTRY_MAX_BYTES = 1 << 30  # when the number of samples is not known


def _entry_fits(path: Path, n_samples: int | None) -> bool:
    """The zip members of an ``.npz`` inflate to at most the bound (read from its directory,
    before anything is decompressed)."""
    import zipfile

    bound = (
        CACHE_ENTRY_MAX_BYTES
        if n_samples is None
        else CACHE_BYTES_PER_SAMPLE * n_samples + CACHE_ENTRY_SLACK
    )
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return total <= bound


def load_cached(cache_dir: Path, key: str, n_samples: int | None = None) -> FeatureSet | None:
    """A cached FeatureSet, or None when there is none or it is damaged (see
    :func:`read_cache_entry`)."""
    features, _ = read_cache_entry(cache_dir, key, n_samples)
    return features


def read_cache_entry(
    cache_dir: Path, key: str, n_samples: int | None = None
) -> tuple[FeatureSet | None, bool]:
    """(features, damaged): the entry when it is sound; ``damaged`` when one exists that cannot
    be trusted (too large once inflated, pickled or malformed arrays, wrong shapes, NaN or
    infinite values, another number of samples than ``n_samples``)."""
    path = cache_dir / f"features-{key}.npz"
    if not path.is_file():
        return None, False
    if not _entry_fits(path, n_samples):
        return None, True
    try:
        with np.load(path, allow_pickle=False) as data:
            features = FeatureSet(
                ids=tuple(str(i) for i in data["ids"]),
                labels=data["labels"],
                logits=data["logits"],
                embeddings=data["embeddings"],
                unk_rate=data["unk_rate"],
                n_ids=data["n_ids"],
                truncated=data["truncated"],
                n_outputs=int(data["n_outputs"]) if "n_outputs" in data else 2,
            )
    except (OSError, KeyError, ValueError, EOFError, TypeError, zlib.error):
        return None, True  # a damaged cache entry is recomputed, never trusted
    n = len(features.ids)
    shapes_ok = (
        (n_samples is None or n == n_samples)
        and features.n_outputs in (1, 2)
        and features.logits.shape == (n, 2)
        and features.embeddings.ndim == 2
        and len(features.embeddings) == n
        and all(a.shape == (n,) for a in (features.labels, features.unk_rate, features.n_ids))
        and features.truncated.shape == (n,)
        and all(
            a.dtype.kind in "biuf"
            for a in (features.labels, features.logits, features.embeddings, features.unk_rate)
        )
        and features.n_ids.dtype.kind in "biu"
        and bool(np.isin(features.labels, (0, 1)).all())
        and all(
            bool(np.isfinite(a).all())
            for a in (features.logits, features.embeddings, features.unk_rate)
        )
    )
    return (features, False) if shapes_ok else (None, True)


def store_cached(cache_dir: Path, key: str, features: FeatureSet) -> None:
    import tempfile

    from codeaudit.errors import OutputError

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz.tmp")
    except OSError as exc:
        raise OutputError(f"{cache_dir}: cannot write the cache: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                ids=np.array(features.ids, dtype=str),
                labels=features.labels,
                logits=features.logits,
                embeddings=features.embeddings,
                unk_rate=features.unk_rate,
                n_ids=features.n_ids,
                truncated=features.truncated,
                n_outputs=np.array(features.n_outputs),
            )
        os.replace(tmp, cache_dir / f"features-{key}.npz")
    except OSError as exc:  # a full disk, a cache directory that vanished
        raise OutputError(f"{cache_dir}: cannot write the cache: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
