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
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from codeaudit.config import TrainConfig
from codeaudit.data.samples import Dataset
from codeaudit.errors import CheckpointError, UsageError
from codeaudit.membership.features import FeatureSet, extract_features
from codeaudit.models.base import VPModel

if TYPE_CHECKING:
    from codeaudit.executor import Executor

# Bounds on a training recipe read from a checkpoint's metadata (the file is untrusted: its
# recipe decides how long codeaudit trains and how much memory each model takes). Sizes are
# bounded by the loaded model itself: the recipe may not describe a larger model.
MAX_RECIPE_EPOCHS = 200
MAX_RECIPE_BATCH = 4096
MAX_RECIPE_LR = 10.0
MAX_RECIPE_MIN_FREQ = 1_000_000
_NO_OVERRIDE = "no flag overrides a recorded recipe; run without --references/--shadows"


class _Recipe:
    """Reads and bounds the fields of a ``hyperparameters`` record (one-line CheckpointErrors
    naming the field)."""

    def __init__(self, hyper: dict[str, Any]) -> None:
        self.hyper = hyper

    def _fail(self, name: str, value: Any, bound: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint metadata hyperparameters.{name} = {str(value)[:40]!r} is not {bound} "
            f"({_NO_OVERRIDE})"
        )

    def whole(self, name: str, default: int, low: int, high: int, value: Any = None) -> int:
        value = self.hyper.get(name, default) if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(name, value, f"a whole number from {low} to {high}")
        return value

    def number(
        self, name: str, default: float, low: float, high: float, *, open_low: bool = False
    ) -> float:
        value = self.hyper.get(name, default)
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and math.isfinite(value)
            and (low < value if open_low else low <= value)
            and value <= high
        )
        if not ok:
            raise self._fail(name, value, f"a number from {low:g} to {high:g}")
        return float(value)


def recipe_of(model: VPModel, metadata: dict[str, Any], *, seed: int) -> TrainConfig:
    """A training configuration that reproduces the target's architecture and recipe, read from
    its checkpoint metadata (defaults where the checkpoint does not say).

    Every value is checked (type and range): epochs at most :data:`MAX_RECIPE_EPOCHS`, batch
    size at most :data:`MAX_RECIPE_BATCH`, and sizes (max_len, RNN dimensions and layers, the
    transformer's width, layers, heads and feed-forward width) at most the loaded model's own:
    the recipe may not describe a larger model than the one audited."""
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
    if "init" in hyper:
        raise UsageError(
            "shadow and reference models for a model trained from another checkpoint (--init) "
            "need that checkpoint; not supported yet (use attacks without --references/--shadows)"
        )
    read = _Recipe(hyper)
    epochs = read.whole("epochs", 20, 1, MAX_RECIPE_EPOCHS)
    patience = read.whole("patience", 0, 0, MAX_RECIPE_EPOCHS)
    kept = metadata.get("kept_epoch")
    if patience > 0 and kept:
        epochs = read.whole("kept_epoch", 0, 1, MAX_RECIPE_EPOCHS, value=kept)  # train as long
    own = model.config if isinstance(getattr(model, "config", None), dict) else {}
    transformer: dict[str, Any] = {}
    if model.arch == "transformer" and "hf_config" in hyper:
        transformer = _transformer_sizes(read, hyper["hf_config"], model)
    sizes: dict[str, int] = {}
    if model.arch != "transformer":
        for name in ("embed_dim", "hidden_dim", "num_layers"):
            limit = own.get(name)
            limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else 1
            sizes[name] = read.whole(name, limit, 1, limit)
    return TrainConfig(
        data="-",
        output="-",
        arch=model.arch,
        epochs=epochs,
        lr=read.number("lr", 2e-3, 0.0, MAX_RECIPE_LR, open_low=True),
        batch_size=read.whole("batch_size", 32, 1, MAX_RECIPE_BATCH),
        max_len=read.whole("max_len", model.max_len, 8, max(int(model.max_len), 8)),
        seed=seed,
        weight_decay=read.number("weight_decay", 0.01, 0.0, 1.0),
        min_freq=read.whole("min_freq", 2, 1, MAX_RECIPE_MIN_FREQ),
        # the transformer's sizes come with its configuration (``transformer``)
        **sizes,
        dropout=read.number("dropout", 0.1, 0.0, 0.99),
        freeze_embeddings=hyper.get("freeze_embeddings") is True,
        transformer=transformer,
        val_split=0.0,
        device="cpu",
    )


def _transformer_sizes(read: _Recipe, blob: Any, model: VPModel) -> dict[str, Any]:
    """The transformer's sizes from the recorded configuration, each at most the loaded
    model's own (its configuration)."""
    try:
        hf = json.loads(blob) if isinstance(blob, str) else None
    except ValueError:
        hf = None
    if not isinstance(hf, dict):
        raise read._fail("hf_config", str(blob)[:40], "a JSON object")
    own = getattr(getattr(model, "module", None), "config", None)
    out: dict[str, Any] = {}
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if key in hf:
            limit = getattr(own, key, None)
            limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else 1
            out[key] = read.whole(f"hf_config.{key}", limit, 1, limit, value=hf[key])
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if key in hf:
            out[key] = _Recipe(hf).number(key, 0.1, 0.0, 0.99)
    return out


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


TrainHook = Callable[[int, int], None]  # (models done or started, total)


def _train_on(
    data: Dataset, recipe: TrainConfig, seed: int, default_lang: str, device: str
) -> VPModel:
    from codeaudit.train.trainer import train_on_dataset

    model, _ = train_on_dataset(
        data, replace(recipe, seed=seed), default_lang=default_lang, device=device
    )
    return model


@dataclass(frozen=True)
class _Shared:
    """What every reference or shadow model reads, shipped to each worker once."""

    data: Dataset  # the candidates (references) or the population (shadows)
    recipe: TrainConfig
    default_lang: str
    device: str
    batch_size: int
    population: Dataset | None = None  # references: RMIA's population, scored by each model


@dataclass(frozen=True)
class _Task:
    """One model: its place in the list, its seed (from that place alone, never from when or
    where it runs) and the indices of ``_Shared.data`` it trains on."""

    index: int
    seed: int
    train: np.ndarray
    score: np.ndarray | None = None  # shadows: whose outputs it returns (its in then out half)


def _reference_model(shared: _Shared, task: _Task) -> tuple[FeatureSet, FeatureSet | None]:
    """Train one reference model; its outputs on every candidate (and on the population)."""
    subset = shared.data.subset(task.train.tolist())
    model = _train_on(subset, shared.recipe, task.seed, shared.default_lang, shared.device)
    features = extract_features(model, shared.data, batch_size=shared.batch_size)
    population = (
        extract_features(model, shared.population, batch_size=shared.batch_size)
        if shared.population is not None
        else None
    )
    return features, population


def _shadow_model(shared: _Shared, task: _Task) -> FeatureSet:
    """Train one shadow model on its in half; its outputs on its in half, then its out half."""
    assert task.score is not None
    model = _train_on(
        shared.data.subset(task.train.tolist()),
        shared.recipe,
        task.seed,
        shared.default_lang,
        shared.device,
    )
    scored = shared.data.subset(task.score.tolist())
    return extract_features(model, scored, batch_size=shared.batch_size)


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
    executor: Executor | None = None,
) -> ReferenceOutputs:
    """``n_models`` reference models, model ``k`` seeded ``seed * 1000 + k + 1``, on
    ``executor`` (default: the serial loop); the same outputs on every executor."""
    import time

    from codeaudit.executor import LocalExecutor

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    mask = balanced_in_mask(len(candidates), n_models, rng)
    executor = executor or LocalExecutor()
    shared = _Shared(
        candidates, recipe, default_lang, executor.device(device), batch_size, population
    )
    tasks = [_Task(k, seed * 1000 + k + 1, np.flatnonzero(mask[k])) for k in range(n_models)]
    outputs = executor.map(
        _reference_model, tasks, shared=shared, label="reference model", progress=progress
    )
    return ReferenceOutputs(
        features=tuple(f for f, _ in outputs),
        in_mask=mask,
        population=tuple(p for _, p in outputs if p is not None),
        seconds_training=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class ShadowOutputs:
    features: FeatureSet  # all shadows' outputs on their own in and out halves, stacked
    membership: np.ndarray  # 1 = in that shadow's training data
    seconds_training: float
    # which shadow produced each row (the shadow attack's held-out selection leaves one out);
    # None: not recorded (treated as one shadow)
    shadow_of: np.ndarray | None = None


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
    executor: Executor | None = None,
) -> ShadowOutputs:
    """``n_models`` shadow models, model ``k`` seeded ``seed * 1000 + 500 + k`` on a random half
    of ``population``, on ``executor`` (default: the serial loop)."""
    import time

    from codeaudit.executor import LocalExecutor

    if n_models < 1:
        raise UsageError("--shadows must be at least 1")
    if len(population) < 20:
        raise UsageError(f"--population: {len(population)} samples are too few for shadow models")
    started = time.perf_counter()
    rng = np.random.default_rng(seed + 7)
    tasks, labels = [], []
    for k in range(n_models):  # every split drawn here, in order, whatever runs the models
        order = rng.permutation(len(population))
        half = len(order) // 2
        inside, outside = np.sort(order[:half]), np.sort(order[half:])
        tasks.append(_Task(k, seed * 1000 + 500 + k, inside, np.r_[inside, outside]))
        labels.append(np.r_[np.ones(len(inside)), np.zeros(len(outside))])
    executor = executor or LocalExecutor()
    shared = _Shared(population, recipe, default_lang, executor.device(device), batch_size)
    parts = executor.map(
        _shadow_model, tasks, shared=shared, label="shadow model", progress=progress
    )
    return ShadowOutputs(
        features=FeatureSet.concat(parts),
        membership=np.concatenate(labels).astype(np.int64),
        seconds_training=time.perf_counter() - started,
        shadow_of=np.concatenate([np.full(len(x), k) for k, x in enumerate(labels)]),
    )
