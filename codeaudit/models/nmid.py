"""NMID: output masking plus keyed Gaussian noise, as an estimator and as a hardened adapter.

It lives with the models because a hardened checkpoint is a model format: loading one anywhere
gives the hardened model. Choosing sigma and measuring what it buys is :mod:`codeaudit.defense`.

* :class:`NMID` is the defence in the scikit-learn shape: hyper-parameters in ``__init__``
  (``sigma``, ``expose``), ``fit(model) -> self`` draws the secret key (``key_``), then
  :meth:`NMID.margin` / :meth:`NMID.release` noise and mask a batch of logits and
  :meth:`NMID.transform` wraps a model.
* :class:`NMIDHead` is the same computation as a TorchScript-able module (the exported file
  runs it; the adapter runs it too, so both give the same numbers).
* :class:`HardenedModel` is a :class:`~codeaudit.models.base.VPModel` that answers only with
  what the defence releases: its ``forward`` returns pseudo-logits whose softmax is exactly the
  released probabilities (or a bare label), and no embedding; gradients and embeddings are
  refused. ``codeaudit.models.checkpoint.load_model`` returns one for every checkpoint whose
  ``defense`` records NMID, so every command sees the shipped model.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch
from torch import nn

from codeaudit.data.samples import Sample
from codeaudit.errors import CheckpointError, HardenError, ModelError
from codeaudit.models import noise
from codeaudit.models.base import Batch, ModelOutput, VPModel
from codeaudit.models.tokenizer import ModelTokenizer

DEFENSE_KIND = "nmid"
DEFENSE_VERSION = 1
# A saved defence's noise scale: beyond this, noise on a logit drowns every answer (harden's own
# choice stays far below); larger values (1e308 makes every logit inf) are refused on load.
MAX_RECORD_SIGMA = 1e4
_SHA256 = re.compile(r"[0-9a-f]{64}")
HASH_NAME = "fmix32-positional-sum/v1"
NOISE_NAME = "gaussian-box-muller/binary-margin-reflected/v1"
# A one-logit (sigmoid) model is noised on its one logit: a scheme of its own, so that a
# codeaudit that would noise it as two logits refuses the checkpoint instead.
NOISE_NAME_SINGLE = "gaussian-box-muller/single-logit-margin-reflected/v1"
NOISE_NAMES = {2: NOISE_NAME, 1: NOISE_NAME_SINGLE}
# The banded mechanism (``--noise banded``): the confidence is replaced by its band plus a keyed
# uniform within it (see :mod:`codeaudit.models.noise`); for one- and two-logit models alike.
BANDED_NAME = "keyed-uniform/confidence-bands/v1"
MAX_BANDS = 256
MECHANISMS = ("gaussian", "banded")


class Exposure(str, Enum):
    """What a caller of the hardened model receives."""

    LABEL = "label"  # the predicted label only
    TOP1 = "top1"  # the label and the noised probability of that label
    PROBS = "probs"  # the noised probabilities of both classes


#: The outputs each exposure lets a caller observe (``codeaudit.membership.features`` reads
#: these names to decide which attacks apply). No exposure includes raw logits, the embedding
#: or the tokenizer's unknown-token rate. For a binary model ``top1`` and ``probs`` carry the
#: same information (one probability determines the other); they differ only in format.
EXPOSES: dict[Exposure, tuple[str, ...]] = {
    Exposure.LABEL: ("label",),
    Exposure.TOP1: ("label", "probs"),
    Exposure.PROBS: ("label", "probs"),
}


def parse_exposure(value: str) -> Exposure:
    try:
        return Exposure(value)
    except ValueError:
        names = ", ".join(e.value for e in Exposure)
        raise HardenError(f"unknown exposure {value!r} (use {names})") from None


def check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise HardenError(f"sigma must be a number, not {type(sigma).__name__}")
    if not math.isfinite(sigma) or sigma < 0:
        raise HardenError(f"sigma {sigma} is invalid: the noise scale must be finite and >= 0")
    return float(sigma)


def check_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Band edges: finite, >= 0, strictly increasing, at most ``MAX_BANDS - 1`` of them."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise HardenError("band edges must be a list of numbers")
    values = []
    for edge in edges:
        if isinstance(edge, bool) or not isinstance(edge, (int, float)):
            raise HardenError(f"band edge {str(edge)[:40]!r} is not a number")
        if not math.isfinite(edge) or edge < 0:
            raise HardenError(f"band edge {edge} is invalid: edges must be finite and >= 0")
        values.append(float(edge))
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise HardenError("band edges must be strictly increasing")
    if len(values) + 1 > MAX_BANDS:
        raise HardenError(f"{len(values) + 1} bands: at most {MAX_BANDS}")
    return tuple(values)


_KEY = re.compile(r"[0-9a-f]{32}")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise HardenError("the NMID key must be 32 lower-case hex digits (128 bits)")
    return key


class NMIDHead(nn.Module):
    """Keyed noise and masking on a batch of binary logits (TorchScript-able)."""

    def __init__(self, key: torch.Tensor, sigma: float, expose: str, outputs: int = 2) -> None:
        super().__init__()
        self.register_buffer("key", key.to(torch.int64).clone())
        self.sigma = float(sigma)
        self.expose = str(expose)
        self.outputs = int(outputs)

    @torch.jit.export
    def margin(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return noise.keyed_margin(
            logits, input_ids, attention_mask, self.key, self.sigma, self.outputs
        )

    def forward(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return noise.release(self.margin(logits, input_ids, attention_mask), self.expose)


class BandedHead(nn.Module):
    """Keyed confidence bands on a batch of binary logits (TorchScript-able): the released
    confidence is the band of the clean margin plus a keyed uniform within it."""

    def __init__(self, key: torch.Tensor, edges: torch.Tensor, expose: str) -> None:
        super().__init__()
        self.register_buffer("key", key.to(torch.int64).clone())
        self.register_buffer("edges", edges.to(torch.float64).clone())
        self.expose = str(expose)

    @torch.jit.export
    def margin(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return noise.keyed_band_margin(logits, input_ids, attention_mask, self.key, self.edges)

    def forward(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return noise.release(self.margin(logits, input_ids, attention_mask), self.expose)


@dataclass(frozen=True)
class Released:
    """What the hardened model answers, per sample (numpy, in input order)."""

    label: np.ndarray  # [N] int64
    confidence: np.ndarray | None = None  # [N] float32 (top1)
    probs: np.ndarray | None = None  # [N, 2] float32 (probs)

    def as_dict(self) -> dict[str, np.ndarray]:
        out = {"label": self.label}
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.probs is not None:
            out["probs"] = self.probs
        return out


class NMID:
    """Noise-based membership-inference defence: mask the outputs, noise the logits.

    ``sigma`` is the standard deviation of the Gaussian noise on each logit (so the binary
    margin of a two-logit model gets ``sqrt(2) * sigma``, and a one-logit sigmoid model's logit
    gets ``sigma``); ``expose`` is ``label``, ``top1`` or ``probs``. ``outputs`` is the number
    of logits of the model (None: read from the model given to :meth:`fit`, else 2). With
    ``keyed`` (the default, and the only mode that can be saved or exported) the noise of an
    input is a deterministic function of its token ids and the secret key, so asking twice gives
    the same answer. ``keyed=False`` draws fresh noise for every query from ``seed``: it exists
    to show, in tests and benchmarks, what keying prevents (averaging repeated queries).

    ``edges`` switches to the banded mechanism (``--noise banded``; ``sigma`` must then be 0):
    ``len(edges) + 1`` confidence bands cut on the clean margin's magnitude, the released
    confidence being the band plus a keyed uniform within it (see :mod:`codeaudit.models.noise`).
    """

    def __init__(
        self,
        sigma: float = 1.0,
        expose: str = "top1",
        *,
        key: str | None = None,
        keyed: bool = True,
        seed: int = 0,
        outputs: int | None = None,
        edges: Sequence[float] | None = None,
    ) -> None:
        self.sigma = sigma
        self.expose = expose
        self.key = key
        self.keyed = keyed
        self.seed = seed
        self.outputs = outputs
        self.edges = edges

    def fit(self, model: VPModel | None = None) -> NMID:
        """Validate the settings and draw the secret key (from the OS CSPRNG unless given)."""
        if model is not None and len(model.labels) != 2:
            raise HardenError("NMID hardens binary models only")
        self.sigma_ = check_sigma(self.sigma)
        self.expose_ = parse_exposure(self.expose)
        self.key_ = check_key(self.key) if self.key is not None else noise.new_key()
        outputs = self.outputs if self.outputs is not None else getattr(model, "n_outputs", 2)
        if outputs not in NOISE_NAMES:
            raise HardenError(f"NMID noises models with 1 or 2 logits, not {outputs}")
        self.outputs_ = int(outputs)
        self.edges_ = None if self.edges is None else check_edges(self.edges)
        if self.edges_ is not None and self.sigma_ != 0:
            raise HardenError("banded noise takes no sigma (the bands set the resolution)")
        self.head_ = self.new_head()
        self.rng_ = torch.Generator().manual_seed(int(self.seed))
        return self

    @property
    def mechanism(self) -> str:
        """``gaussian`` (noise on the logits) or ``banded`` (confidence bands)."""
        return "gaussian" if getattr(self, "edges_", self.edges) is None else "banded"

    @property
    def bands(self) -> int | None:
        """The number of confidence bands (banded mechanism), else None."""
        self._check_fitted()
        return None if self.edges_ is None else len(self.edges_) + 1

    def new_head(self) -> nn.Module:
        """A fresh TorchScript-able module computing this defence (what the exports run)."""
        key = noise.key_words(self.key_)
        if self.edges_ is not None:
            edges = torch.tensor(self.edges_, dtype=torch.float64)
            return BandedHead(key, edges, self.expose_.value)
        return NMIDHead(key, self.sigma_, self.expose_.value, self.outputs_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "key_"):
            raise HardenError("NMID is not fitted: call fit() first")

    def with_sigma(self, sigma: float) -> NMID:
        """The same defence (same key) at another noise scale."""
        self._check_fitted()
        other = NMID(
            sigma,
            self.expose_.value,
            key=self.key_,
            keyed=self.keyed,
            seed=self.seed,
            outputs=self.outputs_,
            edges=self.edges_,
        )
        return other.fit()

    def with_edges(self, edges: Sequence[float]) -> NMID:
        """The same defence (same key, exposure) as confidence bands cut at ``edges``."""
        self._check_fitted()
        other = NMID(
            0.0,
            self.expose_.value,
            key=self.key_,
            keyed=self.keyed,
            seed=self.seed,
            outputs=self.outputs_,
            edges=tuple(edges),
        )
        return other.fit()

    def draws(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, 2] float64: the randomness the mechanism uses for each input, keyed or fresh.
        Gaussian: the standard normals (:meth:`normals`); banded: the uniform in column 0
        (repeated in column 1). The released margins are a pure function of these and the
        clean logits (:func:`mechanism_margin`)."""
        self._check_fitted()
        if self.edges_ is None:
            return self.normals(input_ids, attention_mask)
        if self.keyed:
            key = self.head_.key.to(input_ids.device)
            u = noise.keyed_uniforms(noise.keyed_hash(input_ids, attention_mask, key), key)
        else:
            u = torch.rand(input_ids.shape[0], generator=self.rng_, dtype=torch.float64)
            u = u.clamp(min=2.0**-33, max=1 - 2.0**-33).to(input_ids.device)
        return torch.stack([u, u], dim=1)

    def normals(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, 2] float64 standard normals for a batch: keyed (a function of the ids) or, with
        ``keyed=False``, fresh ones on every call."""
        self._check_fitted()
        if self.keyed:
            key = self.head_.key.to(input_ids.device)
            return noise.keyed_normals(noise.keyed_hash(input_ids, attention_mask, key), key, 2)
        draw = torch.randn(input_ids.shape[0], 2, generator=self.rng_, dtype=torch.float64)
        return draw.to(input_ids.device)

    def margin(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """[B] float64 released margins (log p1 - log p0), argmax-preserving."""
        self._check_fitted()
        if self.edges_ is not None:
            edges = torch.tensor(self.edges_, dtype=torch.float64)
            if self.keyed:
                key = self.head_.key.to(input_ids.device)
                return noise.keyed_band_margin(logits, input_ids, attention_mask, key, edges)
            u = self.draws(input_ids, attention_mask)[:, 0]
            return noise.banded_margin(logits, u.to(logits.device), edges)
        if self.keyed:
            key = self.head_.key.to(input_ids.device)
            return noise.keyed_margin(
                logits, input_ids, attention_mask, key, self.sigma_, self.outputs_
            )
        normals = self.normals(input_ids, attention_mask)
        return noise.noised_margin(logits, normals.to(logits.device), self.sigma_, self.outputs_)

    def release(
        self, logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return noise.release(self.margin(logits, input_ids, attention_mask), self.expose_.value)

    def transform(self, model: VPModel, *, parent_sha256: str | None = None) -> HardenedModel:
        """The model wrapped by this defence."""
        self._check_fitted()
        if isinstance(model, HardenedModel):
            raise HardenError("the model is already hardened")
        return HardenedModel(model, self, parent_sha256=parent_sha256)

    def record(self, *, parent_sha256: str | None, extra: dict[str, Any] | None = None) -> dict:
        """The checkpoint's ``defense`` entry (plain values only)."""
        self._check_fitted()
        if not self.keyed:
            raise HardenError("unkeyed noise is for comparisons only and cannot be saved")
        if self.edges_ is not None:
            return {
                "kind": DEFENSE_KIND,
                "version": DEFENSE_VERSION,
                "sigma": 0.0,
                "expose": self.expose_.value,
                "keyed": True,
                "key": self.key_,
                "hash": HASH_NAME,
                "noise": BANDED_NAME,
                "bands": len(self.edges_) + 1,
                "edges": list(self.edges_),
                "outputs": self.outputs_,
                "parent_sha256": parent_sha256,
                **(extra or {}),
            }
        return {
            "kind": DEFENSE_KIND,
            "version": DEFENSE_VERSION,
            "sigma": self.sigma_,
            "expose": self.expose_.value,
            "keyed": True,
            "key": self.key_,
            "hash": HASH_NAME,
            "noise": NOISE_NAMES[self.outputs_],
            "parent_sha256": parent_sha256,
            **(extra or {}),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], where: str = "checkpoint") -> NMID:
        """Rebuild the defence from a ``defense`` entry; refuses what it does not understand
        (a model must never load unprotected because its defence was misread)."""
        if record.get("kind") != DEFENSE_KIND:
            raise CheckpointError(
                f"{where}: defense {record.get('kind')!r} is not one this codeaudit knows "
                "(refusing to load the model without it)"
            )
        version = record.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > DEFENSE_VERSION:
            raise CheckpointError(
                f"{where}: NMID defense version {version!r} is newer than this codeaudit "
                f"understands ({DEFENSE_VERSION}); upgrade codeaudit"
            )
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"{where}: invalid NMID defense version {str(version)[:40]!r}")
        sigma = record.get("sigma")
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, (int, float))
            or not math.isfinite(sigma)
            or not 0 <= sigma <= MAX_RECORD_SIGMA
        ):
            raise CheckpointError(
                f"{where}: invalid NMID defense sigma {str(sigma)[:40]!r} (a number from 0 to "
                f"{MAX_RECORD_SIGMA:g})"
            )
        for name in ("expose", "key", "hash", "noise"):
            if not isinstance(record.get(name), str):
                raise CheckpointError(f"{where}: NMID defense field {name!r} is not a string")
        parent = record.get("parent_sha256")
        if parent is not None and not (isinstance(parent, str) and _SHA256.fullmatch(parent)):
            raise CheckpointError(f"{where}: NMID defense parent_sha256 is not a sha256")
        outputs = {name: n for n, name in NOISE_NAMES.items()}.get(record.get("noise"))  # type: ignore[arg-type]
        edges = None
        if record.get("noise") == BANDED_NAME:
            outputs = record.get("outputs")  # type: ignore[assignment]
            if outputs not in NOISE_NAMES or isinstance(outputs, bool):
                raise CheckpointError(f"{where}: banded NMID defense: invalid 'outputs'")
            edges = record.get("edges")
            if not isinstance(edges, list) or record.get("bands") != len(edges) + 1:
                raise CheckpointError(
                    f"{where}: banded NMID defense: 'edges' and 'bands' do not agree"
                )
        if record.get("hash") != HASH_NAME or outputs is None:
            raise CheckpointError(f"{where}: NMID defense uses an unknown hash or noise scheme")
        if record.get("keyed") is not True:
            raise CheckpointError(f"{where}: NMID defense is not keyed")
        try:
            return cls(
                check_sigma(record.get("sigma")),  # type: ignore[arg-type]
                parse_exposure(str(record.get("expose"))).value,
                key=check_key(record.get("key")),  # type: ignore[arg-type]
                outputs=outputs,
                edges=edges,
            ).fit()
        except HardenError as exc:
            raise CheckpointError(f"{where}: malformed NMID defense: {exc}") from None

    def fingerprint(self) -> str:
        """A short hash of the key: identifies it in reports without revealing it."""
        import hashlib

        self._check_fitted()
        return hashlib.sha256(bytes.fromhex(self.key_)).hexdigest()[:16]


_REFUSED = (
    "a hardened model exposes no {what}; run this on the parent checkpoint (sha256 {sha}) "
    "before hardening"
)


class HardenedModel(VPModel):
    """A VP model behind NMID: answers carry only the released label/probabilities."""

    def __init__(self, base: VPModel, defense: NMID, *, parent_sha256: str | None = None) -> None:
        super().__init__(
            base.module,
            base.tokenizer,
            max_len=base.max_len,
            default_lang=base.default_lang,
            labels=base.labels,
            config=base.config,
        )
        defense._check_fitted()
        if defense.outputs_ != base.n_outputs:
            raise CheckpointError(
                f"the NMID defense noises {defense.outputs_} logit(s) but the model has "
                f"{base.n_outputs}: defense and weights do not belong together"
            )
        self.base = base
        self.defense = defense
        self.parent_sha256 = parent_sha256

    @property  # type: ignore[misc]
    def arch(self) -> str:  # type: ignore[override]
        return self.base.arch

    @property
    def exposes(self) -> tuple[str, ...]:
        return EXPOSES[self.defense.expose_]

    @property
    def n_outputs(self) -> int:
        return self.base.n_outputs

    @property
    def max_positions(self) -> int | None:
        return self.base.max_positions

    @property
    def expose(self) -> str:
        return self.defense.expose_.value

    @property
    def sigma(self) -> float:
        return self.defense.sigma_

    @property
    def bands(self) -> int | None:
        return self.defense.bands

    def to(self, device: torch.device | str) -> HardenedModel:
        self.base.to(device)
        return self

    # -- what the hardened model answers ---------------------------------------------------
    def margin(self, batch: Batch) -> torch.Tensor:
        logits = self.base.forward(batch).logits
        return self.defense.margin(logits, batch.input_ids, batch.attention_mask)

    def forward(self, batch: Batch) -> ModelOutput:
        """Pseudo-logits ``[0, margin]`` whose softmax is exactly what is released (a fixed
        margin of 30 for a bare label) and an empty embedding."""
        released = self.margin(batch)
        logits = noise.pseudo_logits(released, self.defense.expose_.value)
        return ModelOutput(logits, logits.new_zeros((logits.shape[0], 0)))

    def query(
        self, samples: Sequence[Sample | str], *, batch_size: int = 64, lang: str | None = None
    ) -> Released:
        """Ask the hardened model about functions (samples or source strings)."""
        from codeaudit.models.inference import length_buckets

        items = [
            s if isinstance(s, Sample) else Sample(id=str(i), code=s, lang=lang)
            for i, s in enumerate(samples)
        ]
        encodings = self.encode(items)
        n = len(encodings)
        label = np.zeros(n, dtype=np.int64)
        confidence = np.zeros(n, dtype=np.float32) if self.expose == "top1" else None
        probs = np.zeros((n, 2), dtype=np.float32) if self.expose == "probs" else None
        was_training = self.module.training
        self.eval()
        try:
            with torch.inference_mode():
                for index in length_buckets([len(e.ids) for e in encodings], batch_size):
                    batch = self.collate([encodings[i] for i in index]).to(self.device)
                    out = noise.release(self.margin(batch), self.expose)
                    label[index] = out["label"].cpu().numpy()
                    if confidence is not None:
                        confidence[index] = out["confidence"].cpu().numpy()
                    if probs is not None:
                        probs[index] = out["probs"].cpu().numpy()
        finally:
            self.train(was_training)
        return Released(label, confidence, probs)

    def defense_record(self) -> dict[str, Any]:
        return self.defense.record(parent_sha256=self.parent_sha256)

    # -- what it refuses ---------------------------------------------------------------------
    def _refuse(self, what: str) -> ModelError:
        return ModelError(_REFUSED.format(what=what, sha=(self.parent_sha256 or "?")[:16]))

    def input_embeddings(self) -> nn.Embedding:
        raise self._refuse("input embeddings")

    def forward_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutput:
        raise self._refuse("embeddings or gradients")

    def head_parameters(self) -> list[nn.Parameter]:
        raise self._refuse("trainable head")

    def model_config(self) -> dict[str, Any]:
        return self.base.model_config()

    @classmethod
    def from_parts(
        cls,
        config: dict[str, Any],
        tokenizer: ModelTokenizer,
        state_dict: dict[str, torch.Tensor] | None,
        *,
        max_len: int,
        default_lang: str,
        labels: Sequence[str],
    ) -> VPModel:
        raise ModelError("a hardened model is built from its parent model and its defence")


def apply_defense(model: VPModel, record: Any, where: str) -> HardenedModel:
    """The hardened model a checkpoint's ``defense`` entry describes."""
    if not isinstance(record, dict):
        raise CheckpointError(f"{where}: checkpoint field 'defense' has the wrong type")
    defense = NMID.from_record(record, where)
    parent = record.get("parent_sha256")
    return HardenedModel(model, defense, parent_sha256=parent if isinstance(parent, str) else None)
