"""Shadow and reference models: more models of the target's architecture and training recipe,
trained by codeaudit itself on data whose membership the attacker controls.

* Reference models (LiRA, RMIA): K models on random halves of the candidate samples (members
  and non-members of the target together), arranged so that every candidate is in the training
  data of exactly half of them (Carlini et al. 2022). Which half is independent of the target's
  membership, so nothing about it leaks into the attack.
* Shadow models (Shokri et al. 2017): K models on random halves of population data the attacker
  owns; the other half of each is that shadow's non-members.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from codeaudit.config import TrainConfig
from codeaudit.data.samples import Dataset
from codeaudit.errors import UsageError
from codeaudit.membership.features import FeatureSet, extract_features
from codeaudit.models.base import VPModel


def recipe_of(model: VPModel, metadata: dict[str, Any], *, seed: int) -> TrainConfig:
    """A training configuration that reproduces the target's architecture and recipe, read from
    its checkpoint metadata (defaults where the checkpoint does not say)."""
    hyper = metadata.get("hyperparameters")
    if not isinstance(hyper, dict):
        raise UsageError(
            "shadow and reference models need the target's training recipe, which this model "
            "does not record (train it with codeaudit train, or use attacks without "
            "--references/--shadows)"
        )
    if "pretrained" in hyper:
        raise UsageError(
            "shadow and reference models for a fine-tuned pretrained transformer need its base "
            "model; not supported yet (use attacks without --references/--shadows)"
        )
    epochs = int(hyper.get("epochs", 20))
    if int(hyper.get("patience", 0)) > 0 and metadata.get("kept_epoch"):
        epochs = int(metadata["kept_epoch"])  # early stopping kept this epoch: train as long
    transformer: dict[str, Any] = {}
    if model.arch == "transformer" and isinstance(hyper.get("hf_config"), str):
        hf = json.loads(hyper["hf_config"])
        keys = (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
        )
        transformer = {k: hf[k] for k in keys if k in hf}
    return TrainConfig(
        data="-",
        output="-",
        arch=model.arch,
        epochs=epochs,
        lr=float(hyper.get("lr", 2e-3)),
        batch_size=int(hyper.get("batch_size", 32)),
        max_len=int(hyper.get("max_len", model.max_len)),
        seed=seed,
        weight_decay=float(hyper.get("weight_decay", 0.01)),
        min_freq=int(hyper.get("min_freq", 2)),
        # the transformer's sizes come with its configuration (``transformer``)
        **(
            {}
            if model.arch == "transformer"
            else {
                "embed_dim": int(hyper.get("embed_dim", 128)),
                "hidden_dim": int(hyper.get("hidden_dim", 128)),
                "num_layers": int(hyper.get("num_layers", 1)),
            }
        ),
        dropout=float(hyper.get("dropout", 0.1)),
        transformer=transformer,
        val_split=0.0,
        device="cpu",
    )


def balanced_in_mask(n_samples: int, n_models: int, rng: np.random.Generator) -> np.ndarray:
    """[K, N] bool: every sample is IN for exactly K/2 models (K even), chosen at random."""
    if n_models < 2 or n_models % 2:
        raise UsageError(f"--references {n_models}: use an even number of at least 2")
    mask = np.zeros((n_models, n_samples), dtype=bool)
    for j in range(n_samples):
        mask[rng.permutation(n_models)[: n_models // 2], j] = True
    return mask


@dataclass(frozen=True)
class ReferenceOutputs:
    """Outputs of K reference models on the N candidates (and optionally on population data)."""

    features: tuple[FeatureSet, ...]  # per model, on the candidates
    in_mask: np.ndarray  # [K, N] True where the candidate was in that model's training data
    population: tuple[FeatureSet, ...] = ()  # per model, on population data (RMIA's z)
    seconds_training: float = 0.0

    @property
    def phi(self) -> np.ndarray:
        return np.stack([f.logit_scaled_confidence for f in self.features])

    @property
    def p_true(self) -> np.ndarray:
        return np.stack([f.true_class_probability for f in self.features])


TrainHook = Callable[[int, int], None]  # (model index, total)


def _train_on(
    data: Dataset, recipe: TrainConfig, seed: int, default_lang: str, device: str
) -> VPModel:
    from codeaudit.train.trainer import train_on_dataset

    model, _ = train_on_dataset(
        data, replace(recipe, seed=seed), default_lang=default_lang, device=device
    )
    return model


def train_references(
    candidates: Dataset,
    recipe: TrainConfig,
    n_models: int,
    *,
    seed: int,
    default_lang: str,
    population: Dataset | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    progress: TrainHook | None = None,
) -> ReferenceOutputs:
    import time

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    mask = balanced_in_mask(len(candidates), n_models, rng)
    features, population_features = [], []
    for k in range(n_models):
        if progress is not None:
            progress(k, n_models)
        subset = candidates.subset(np.flatnonzero(mask[k]).tolist())
        model = _train_on(subset, recipe, seed * 1000 + k + 1, default_lang, device)
        features.append(extract_features(model, candidates, batch_size=batch_size))
        if population is not None:
            population_features.append(extract_features(model, population, batch_size=batch_size))
    if progress is not None:
        progress(n_models, n_models)
    return ReferenceOutputs(
        features=tuple(features),
        in_mask=mask,
        population=tuple(population_features),
        seconds_training=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class ShadowOutputs:
    features: FeatureSet  # all shadows' outputs on their own in and out halves, stacked
    membership: np.ndarray  # 1 = in that shadow's training data
    seconds_training: float


def train_shadows(
    population: Dataset,
    recipe: TrainConfig,
    n_models: int,
    *,
    seed: int,
    default_lang: str,
    device: str = "cpu",
    batch_size: int = 64,
    progress: TrainHook | None = None,
) -> ShadowOutputs:
    import time

    if n_models < 1:
        raise UsageError("--shadows must be at least 1")
    if len(population) < 20:
        raise UsageError(f"--population: {len(population)} samples are too few for shadow models")
    started = time.perf_counter()
    rng = np.random.default_rng(seed + 7)
    parts, labels = [], []
    for k in range(n_models):
        if progress is not None:
            progress(k, n_models)
        order = rng.permutation(len(population))
        half = len(order) // 2
        inside, outside = sorted(order[:half].tolist()), sorted(order[half:].tolist())
        model = _train_on(
            population.subset(inside), recipe, seed * 1000 + 500 + k, default_lang, device
        )
        both = population.subset(inside + outside)
        parts.append(extract_features(model, both, batch_size=batch_size))
        labels.append(np.r_[np.ones(len(inside)), np.zeros(len(outside))])
    if progress is not None:
        progress(n_models, n_models)
    return ShadowOutputs(
        features=FeatureSet.concat(parts),
        membership=np.concatenate(labels).astype(np.int64),
        seconds_training=time.perf_counter() - started,
    )
