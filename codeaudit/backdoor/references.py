"""Clean reference models for the backdoor scan (DBS, Shen et al. 2022; PICCOLO, Liu et al. 2022):
models of the suspect's task that nobody poisoned. A trigger that flips them as well as the suspect
is natural or adversarial (a property of the task, the data or the architecture), not planted.

Two sources, used together when both are given:

* ``--references K``: K models trained here with the suspect's recipe (architecture and
  hyperparameters from its checkpoint metadata, bounded by
  :func:`codeaudit.membership.references.recipe_of`) and the suspect's own tokenizer, so a
  trigger's ids mean the same to every model. Model ``k`` is seeded ``seed * 1000 + 700 + k``
  (from its index only) and trained through the executor (``--executor``, ``--workers``): the
  same models whatever runs them.
* ``--reference-model PATH``: models the user trusts, loaded weights-only like MODEL. They must
  have MODEL's labels, its number of outputs and its tokenizer (the same vocabulary, id for id):
  the inversion evaluates a trigger's ids on every model at the same placed positions, so a
  model with another vocabulary is refused (one line, exit 2) rather than re-tokenised.

What the references train on, and why: the scan judges the suspect on victims drawn from
``--data`` (the inversion samples and the held-out ones). A reference that trained on those very
functions has memorised them, and a memorised function is harder to flip, so a reference would
look more robust than it is and every trigger more specific to the suspect than it is (clean
models called backdoored). The trusted data (``--reference-data``, default ``--data``) is
therefore used less every function the scan judges with: same id, same pair, or the same code
(whitespace aside). With the default, that is most of a small ``--data``: give a separate trusted
set for references that learn the task well.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from codeaudit.data.samples import Dataset, Sample
from codeaudit.errors import BackdoorError

if TYPE_CHECKING:
    from codeaudit.executor import Executor

#: Fewest trusted functions (after the scan's victims are set aside) a reference trains on.
MIN_REFERENCE_TRAIN = 20


def _code_key(code: str) -> str:
    return hashlib.sha256(" ".join(code.split()).encode()).hexdigest()


def trusted_training_set(trusted: Dataset, judged: Sequence[Sample]) -> Dataset:
    """``trusted`` less every function that shares an id, a pair or its code with one the scan
    judges with (its victims): the reference models never see them."""
    ids = {s.id for s in judged}
    pairs = {s.pair for s in judged if s.pair}
    codes = {_code_key(s.code) for s in judged}
    kept = [
        i
        for i, s in enumerate(trusted.samples)
        if s.id not in ids and (s.pair is None or s.pair not in pairs)
        if _code_key(s.code) not in codes
    ]
    subset = trusted.subset(kept)
    counts = subset.class_counts() if len(subset) else {}
    if len(subset) < MIN_REFERENCE_TRAIN or min(counts.values(), default=0) == 0:
        raise BackdoorError(
            f"{trusted.path}: {len(subset)} of its {len(trusted)} functions are left for the "
            f"reference models once the {len(judged)} the scan judges with are set aside "
            f"(at least {MIN_REFERENCE_TRAIN}, of both labels, are needed): give more trusted "
            "data with --reference-data"
        )
    return subset


@dataclass(frozen=True)
class _Shared:
    data: Dataset
    recipe: Any  # TrainConfig
    tokenizer: Any
    default_lang: str
    device: str


@dataclass(frozen=True)
class _Task:
    index: int
    seed: int


def _train_reference(shared: _Shared, task: _Task) -> dict[str, Any]:
    """One reference model (a worker's task); its weights, on the CPU."""
    from codeaudit.train.trainer import train_on_dataset

    model, _ = train_on_dataset(
        shared.data,
        replace(shared.recipe, seed=task.seed),
        default_lang=shared.default_lang,
        device=shared.device,
        tokenizer=shared.tokenizer,
    )
    return {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}


def reference_seed(seed: int, index: int) -> int:
    return seed * 1000 + 700 + index


def recipe_for(model: Any, metadata: dict[str, Any], seed: int) -> Any:
    """The suspect's training recipe, bounded (a one-line CheckpointError or UsageError past a
    bound or when the checkpoint records none), at the suspect's ``max_len``."""
    from codeaudit.membership.references import recipe_of

    recipe = recipe_of(model, metadata, seed=seed)
    return replace(recipe, max_len=int(model.max_len))


def train_reference_models(
    suspect: Any,
    metadata: dict[str, Any],
    data: Dataset,
    n_models: int,
    *,
    seed: int,
    device: str = "cpu",
    executor: Executor | None = None,
    progress: Any = None,
) -> tuple[list[Any], float]:
    """``n_models`` clean models of the suspect's recipe and tokenizer, trained on ``data``;
    returns them (in evaluation mode, on ``device``) and the seconds it took."""
    from codeaudit.executor import LocalExecutor
    from codeaudit.train.trainer import build_model

    started = time.perf_counter()
    recipe = recipe_for(suspect, metadata, seed)
    executor = executor or LocalExecutor()
    shared = _Shared(data, recipe, suspect.tokenizer, suspect.default_lang, executor.device(device))
    tasks = [_Task(k, reference_seed(seed, k)) for k in range(n_models)]
    states = executor.map(
        _train_reference, tasks, shared=shared, label="reference model", progress=progress
    )
    models = []
    for state in states:
        model = build_model(recipe, [], suspect.default_lang, suspect.tokenizer)
        model.module.load_state_dict(state)
        model.to(device)
        model.eval()
        models.append(model)
    return models, time.perf_counter() - started


def load_reference(path: str) -> Any:
    """A ``--reference-model``: loaded weights-only (never through full unpickling)."""
    from codeaudit.models.checkpoint import load_model

    return load_model(path, trust=False)


def check_reference(suspect: Any, loaded: Any, path: str) -> None:
    """Refuse a reference model the scan cannot compare with the suspect (one line)."""
    ref = loaded.model
    if loaded.defense is not None:
        raise BackdoorError(f"--reference-model {path}: hardened (NMID) model; give the original")
    if tuple(map(str, ref.labels)) != tuple(map(str, suspect.labels)) or int(ref.n_outputs) != int(
        suspect.n_outputs
    ):
        raise BackdoorError(
            f"--reference-model {path}: its labels {list(map(str, ref.labels))} differ from "
            f"MODEL's {list(map(str, suspect.labels))}: a reference must be a model of the same "
            "task"
        )
    same_kind = type(ref.tokenizer) is type(suspect.tokenizer) and getattr(
        ref.tokenizer, "input_format", None
    ) == getattr(suspect.tokenizer, "input_format", None)
    if not same_kind or ref.tokenizer.vocabulary() != suspect.tokenizer.vocabulary():
        raise BackdoorError(
            f"--reference-model {path}: its tokenizer differs from MODEL's "
            f"({len(ref.tokenizer.vocabulary())} vs {len(suspect.tokenizer.vocabulary())} "
            "tokens): trigger ids are compared on every model, so a reference must read MODEL's "
            "vocabulary; use --references K to train references that do"
        )
    limit = ref.max_positions
    if limit is not None and limit < int(suspect.max_len):
        raise BackdoorError(
            f"--reference-model {path}: reads at most {limit} ids, MODEL {suspect.max_len}"
        )
