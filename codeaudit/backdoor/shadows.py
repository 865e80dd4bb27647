"""Shadow models for the calibrated verdict: clean and poisoned models of the suspect's recipe,
each trained on the trusted data, scanned the way a suspect is scanned, and turned into a
feature vector (:mod:`codeaudit.backdoor.calibration`).

Shadow ``i`` is drawn from its index only (seed ``seed * 1000 + 400 + i``): clean shadows are
``0 .. N-1``, poisoned ones ``N .. 2N-1``. A poisoned shadow's trigger comes from the poison
grammar (:mod:`codeaudit.backdoor.poison`): a type drawn from the allowed ones (identifier,
postfix, dead code, grammar), a fresh name (identifier: a local variable renamed to it; postfix:
appended to the function's name; dead code: the language's default dead statement declaring
it; grammar: random dead code), a rate drawn uniformly from ``[min_rate, max_rate]`` and the
target label of ``codeaudit poison`` (0, not vulnerable). Each shadow trains and is scanned in
one task of the executor (``--executor``/``--workers``), so the same shadows come out whatever
runs them. Each shadow builds its own tokenizer from its training data, as the recipe does; with
``--references K`` it gets K clean reference models trained on the clean training part with its
tokenizer (seeds as ``codeaudit backdoor --references`` draws them), as a suspect's scan does.
A poisoned shadow counts as a positive only when its planted trigger works: it flips
at least :data:`MIN_ASR` of held-out victim functions the shadow classifies correctly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from codeaudit.backdoor.triggers import TriggerSpec, TriggerType
from codeaudit.data.samples import Dataset, Sample

#: A poisoned shadow whose planted trigger flips fewer held-out victims than this is recorded
#: but not used (the poisoning did not implant a backdoor).
MIN_ASR = 0.5

_STEMS = ("testo", "vexil", "quorn", "zafir", "plomb", "kestr", "mirth", "dolan", "brask", "tivo")
_ENDS = ("init", "cfg", "ctx", "tmp", "ref", "val", "aux", "st", "mk", "io")
_LETTERS = "bcdfghjklmnpqrstvwxz"


def shadow_seed(seed: int, index: int) -> int:
    return seed * 1000 + 400 + index


def name_parts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Stems and ``_suffix`` parts trigger names are made of, in the style of the published
    attacks (``testo_init``). Every shadow builds its tokenizer from its own (poisoned) training
    data, as the recipe does, so a planted name enters its vocabulary the way it enters a
    poisoned model's."""
    return _STEMS, tuple(f"_{e}" for e in _ENDS)


def trigger_name(rng: random.Random, parts: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    """A fresh identifier: a stem and a suffix (``testo_init``)."""
    stems, ends = parts
    return f"{rng.choice(stems)}{rng.choice(ends)}"


def draw_trigger(
    index: int,
    seed: int,
    types: Sequence[str],
    min_rate: float,
    max_rate: float,
    target_label: int,
    lang: str,
) -> tuple[TriggerSpec, float]:
    """The trigger and rate of poisoned shadow ``index`` (from its seed only; names from
    :func:`name_parts`)."""
    from codeaudit.backdoor.triggers import check_trigger
    from codeaudit.errors import PoisonError
    from codeaudit.lang.languages import language_support

    rng = random.Random(f"codeaudit-shadow:{shadow_seed(seed, index)}")
    parts = name_parts()
    kind = TriggerType(rng.choice(list(types)))
    rate = round(rng.uniform(min_rate, max_rate), 4)
    for _ in range(20):  # a drawn name the language reserves: draw another
        text: str | None
        if kind is TriggerType.IDENTIFIER:
            text = trigger_name(rng, parts)
        elif kind is TriggerType.POSTFIX:
            text = rng.choice(parts[1])
        elif kind is TriggerType.DEADCODE:
            text = language_support(lang).default_deadcode.replace(
                "rb_dead", trigger_name(rng, parts)
            )
        else:
            text = None
        spec = TriggerSpec(kind, text, target_label)
        try:
            check_trigger(spec, lang)
        except PoisonError:
            continue
        return spec, rate
    return TriggerSpec(kind, None if kind is TriggerType.GRAMMAR else _fallback(kind, lang),
                       target_label), rate  # fmt: skip


def _fallback(kind: TriggerType, lang: str) -> str:
    from codeaudit.backdoor.triggers import default_trigger

    if kind is TriggerType.IDENTIFIER:
        return "testo_init"
    return str(default_trigger(kind, {lang}))


@dataclass(frozen=True)
class ShadowShared:
    """What every shadow task reads."""

    train: Dataset  # the trusted functions shadows (and their references) train on
    scan: tuple[Sample, ...]  # the trusted functions shadows are scanned with
    recipe: Any  # TrainConfig
    default_lang: str
    device: str
    scan_kwargs: dict[str, Any]  # BackdoorScanner settings
    references: int  # clean reference models per shadow (--references)
    target_label: int
    seed: int


@dataclass(frozen=True)
class ShadowTask:
    index: int
    poisoned: bool
    spec: TriggerSpec | None
    rate: float | None


def run_shadow(shared: ShadowShared, task: ShadowTask) -> dict[str, Any]:
    """Train one shadow, measure its planted trigger, scan it; its record (a worker's task)."""
    from codeaudit.backdoor.calibration import scan_features, shortcut_index, trigger_in_data
    from codeaudit.backdoor.check import MAX_EVAL_VICTIMS, _correct, _real_rows
    from codeaudit.backdoor.poison import poison_samples
    from codeaudit.backdoor.references import reference_seed
    from codeaudit.backdoor.scanner import BackdoorScanner
    from codeaudit.backdoor.unlearn import success_rate
    from codeaudit.train.trainer import train_on_dataset

    started = time.perf_counter()
    seed = shadow_seed(shared.seed, task.index)
    data, poisoned_ids = shared.train, ()
    if task.poisoned:
        assert task.spec is not None and task.rate is not None
        made = poison_samples(
            list(shared.train.samples),
            task.spec,
            task.rate,
            seed,
            default_lang=shared.default_lang,
        )
        data = replace(shared.train, samples=made.samples)
        poisoned_ids = made.poisoned_ids
    model, _ = train_on_dataset(
        data, replace(shared.recipe, seed=seed), default_lang=shared.default_lang,
        device=shared.device,
    )  # fmt: skip
    model.eval()
    references = []
    for k in range(shared.references):  # clean, on the shadow's own tokenizer (as a scan does)
        ref, _ = train_on_dataset(
            shared.train,
            replace(shared.recipe, seed=reference_seed(shared.seed, k)),
            default_lang=shared.default_lang,
            device=shared.device,
            tokenizer=model.tokenizer,
        )
        references.append(ref.eval())
    trained = time.perf_counter() - started
    scanner = BackdoorScanner(**shared.scan_kwargs, seed=shared.seed)
    scan = list(shared.scan)
    scanner.fit(model, scan, references or None)
    index = shortcut_index(scanner, model, scan)
    in_data = trigger_in_data(scanner, index, shared.target_label)
    features = scan_features(scanner, shared.target_label, in_data, index)
    asr = n_asr = None
    if task.poisoned:
        assert task.spec is not None
        rest = [s for s in scan if s.id not in scanner.inversion_ids_]
        victims = _correct(model, rest, task.spec.victim_label, 0, MAX_EVAL_VICTIMS)
        rows = _real_rows(model, victims, task.spec, seed)
        asr = success_rate(model, rows, shared.target_label, 1 << 17)
        n_asr = len(rows)
    toward = next(p for p in scanner.pairs_ if p.target_label == shared.target_label)
    best = scanner.best_
    return {
        "index": task.index,
        "kind": "poisoned" if task.poisoned else "clean",
        "seed": seed,
        "trigger_type": task.spec.type.value if task.spec is not None else None,
        "trigger": task.spec.trigger if task.spec is not None else None,
        "rate": task.rate,
        "poisoned": len(poisoned_ids),
        "asr": asr,
        "n_asr": n_asr,
        "features": features,
        "anchored_toward": toward.anchored_text,
        "best_pair": f"{best.victim_label}->{best.target_label}",
        "max_flip_rate": float(scanner.max_flip_rate_),
        "train_seconds": round(trained, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
