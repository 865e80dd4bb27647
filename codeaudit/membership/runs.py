"""The membership attacks a check runs, as a registry: each :class:`AttackRun` says which attack
classes it runs, when it applies (what the model exposes, which options ask for it) and how it
turns the shared :class:`Session` into evaluated attacks. The membership check runs every run that
applies, in registry order; registering a run is all it takes to add an attack to every audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codeaudit.check import Context
from codeaudit.data.samples import Dataset
from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.attacks.blind import BlindAttack
from codeaudit.membership.attacks.label_only import BoundaryAttack, CorrectnessAttack
from codeaudit.membership.attacks.reference import RMIA, LiRA
from codeaudit.membership.attacks.shadow import ShadowAttack
from codeaudit.membership.attacks.threshold import SIGNALS, ThresholdAttack
from codeaudit.membership.attacks.trained import TrainedAttack
from codeaudit.membership.evaluate import (
    Evaluated,
    evaluate_rows,
    evaluate_trained,
    evaluate_unsupervised,
    make_folds,
)
from codeaudit.membership.features import FEATURES, FeatureSet


@dataclass
class Session:
    """What every attack run shares: the target's outputs on the candidates (members first),
    who is a member, the folds, what the model exposes, and the settings."""

    config: Any  # MembershipConfig
    features: FeatureSet
    membership: np.ndarray
    candidates: Dataset
    folds: list[tuple[np.ndarray, np.ndarray]]
    usable: frozenset[str]
    feature_sets: list[tuple[str, ...]]
    context: Context = field(default_factory=Context)
    model: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)  # the checkpoint's (training recipe)
    population: Dataset | None = None
    warnings: list[str] = field(default_factory=list)  # what the attack runs add to the result
    # sets only the distance-based attack models read (trained.DISTANCE_FEATURE_SETS)
    distance_sets: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def kw(self) -> dict[str, int]:
        return {"n_boot": self.config.n_boot, "seed": self.config.seed}

    @property
    def scores_exposed(self) -> bool:
        """Shadow and reference attacks read scores: they need more than a label."""
        return "confidence" in self.usable

    def recipe(self) -> Any:
        from codeaudit.membership.references import recipe_of

        return recipe_of(self.model, self.metadata, seed=self.config.seed)

    def executor(self) -> Any:
        """Where the reference and shadow models train (``--executor``, ``--workers``)."""
        from codeaudit.executor import executor_for

        return executor_for(self.config)


@dataclass(frozen=True)
class AttackRun:
    name: str
    attacks: tuple[type[MembershipAttack], ...]  # the attack classes it runs
    stage: str  # the timing it adds to
    applies: Callable[[Session], bool]
    run: Callable[[Session], list[Evaluated]]


def _thresholds(s: Session) -> list[Evaluated]:
    return [
        evaluate_unsupervised(ThresholdAttack(signal), s.features, s.membership, s.folds, **s.kw)
        for signal in SIGNALS
        if set(SIGNALS[signal][0]) <= s.usable
    ]


def _correctness(s: Session) -> list[Evaluated]:
    return [evaluate_unsupervised(CorrectnessAttack(), s.features, s.membership, s.folds, **s.kw)]


def _trained(s: Session) -> list[Evaluated]:
    s.context.report("trained attacks", 0, 1)
    found = evaluate_trained(
        s.config.attack_classifiers,
        s.feature_sets,
        s.features,
        s.membership,
        s.folds,
        select=True,
        inner_folds=s.config.selection_folds,
        distance_sets=s.distance_sets,
        **s.kw,
    )
    s.context.report("trained attacks", 1, 1)
    return found


def _blind(s: Session) -> list[Evaluated]:
    """The model-free baseline on the candidates' code (:mod:`codeaudit.membership.blind`)."""
    from codeaudit.membership.blind import blind_inputs

    default_lang = getattr(s.model, "default_lang", None) or "c"
    inputs = blind_inputs(s.candidates.samples, default_lang)
    return [evaluate_rows(BlindAttack(inputs), s.membership, s.folds, **s.kw)]


def _boundary(s: Session) -> list[Evaluated]:
    """The label-only rewrite-boundary attack on a balanced sample of the candidates."""
    config = s.config
    n_members = int(s.membership.sum())
    rng = np.random.default_rng(config.seed)
    half = config.boundary_count // 2
    pick = np.r_[
        rng.permutation(n_members)[: min(half, n_members)],
        n_members
        + rng.permutation(len(s.membership) - n_members)[
            : min(half, len(s.membership) - n_members)
        ],
    ]
    pick.sort()
    sub = s.membership[pick]
    if min(sub.sum(), len(pick) - sub.sum()) < config.folds:
        return []
    attack = BoundaryAttack(
        s.model,
        [s.candidates.samples[i] for i in pick],
        max_rewrites=config.boundary_rewrites,
        seed=config.seed,
        batch_size=config.batch_size,
    )
    s.context.report("label-only boundary attack", 0, 1)
    found = evaluate_unsupervised(
        attack, s.features.subset(pick), sub, make_folds(sub, config.folds, config.seed), **s.kw
    )
    s.context.report("label-only boundary attack", 1, 1)
    from codeaudit.lang.rewrite import skipped_warning

    warning = skipped_warning(
        attack.skipped,
        "label-only boundary attack",
        "they get no rewrite, so they count as surviving every one",
    )
    if warning is not None:
        s.warnings.append(warning)
    return [found]


def _shadows(s: Session) -> list[Evaluated]:
    from codeaudit.membership.references import train_shadows

    assert s.population is not None
    shadows = train_shadows(
        s.population,
        s.recipe(),
        s.config.shadows,
        seed=s.config.seed,
        default_lang=s.model.default_lang,
        device=s.context.device,
        batch_size=s.config.batch_size,
        progress=s.context.reporter("shadow models"),
        executor=s.executor(),
    )
    attack = ShadowAttack(shadows, seed=s.config.seed).fit(s.features, s.membership)
    return [evaluate_unsupervised(attack, s.features, s.membership, s.folds, **s.kw)]


def _references(s: Session) -> list[Evaluated]:
    """LiRA (online, offline), RMIA, and the trained attack with the LiRA score as an input: LiRA
    calibrates each sample's difficulty, the trained attack reads what phi does not (the
    embedding); together they are stronger than either (docs/membership-results.md). LiRA learns
    nothing from the target's membership, so its score as an input keeps the folds honest."""
    from codeaudit.membership.features import extract_features
    from codeaudit.membership.references import train_references

    config = s.config
    refs = train_references(
        s.candidates,
        s.recipe(),
        config.references,
        seed=config.seed,
        default_lang=s.model.default_lang,
        population=s.population,
        device=s.context.device,
        batch_size=config.batch_size,
        progress=s.context.reporter("reference models"),
        executor=s.executor(),
    )
    population_target = (
        extract_features(s.model, s.population, batch_size=config.batch_size)
        if s.population is not None
        else None
    )
    found = [
        evaluate_unsupervised(attack, s.features, s.membership, s.folds, **s.kw)
        for attack in (
            LiRA(refs, online=True),
            LiRA(refs, online=False),
            RMIA(refs, population_target=population_target),
        )
    ]
    found += evaluate_trained(
        config.attack_classifiers,
        [(*(f for f in FEATURES if f in s.usable), "lira-online")],
        s.features,
        s.membership,
        s.folds,
        signals={"lira-online": found[0].scores},
        family="reference",
        select=True,
        inner_folds=config.selection_folds,
        **s.kw,
    )
    return found


#: The family of the runs that are diagnostics of the data rather than attacks on the model: the
#: check reports them apart and never ranks them among the attacks.
BASELINE_FAMILY = BlindAttack.family

#: Every attack run, in the order the check runs them (ties in the report go to the earlier).
ATTACK_RUNS: tuple[AttackRun, ...] = (
    AttackRun("threshold", (ThresholdAttack,), "threshold_attacks", lambda s: True, _thresholds),
    AttackRun(
        "label-only-correctness",
        (CorrectnessAttack,),
        "threshold_attacks",
        lambda s: True,
        _correctness,
    ),
    AttackRun(
        "trained", (TrainedAttack,), "trained_attacks", lambda s: bool(s.feature_sets), _trained
    ),
    AttackRun("blind", (BlindAttack,), "blind_baseline", lambda s: True, _blind),
    AttackRun(
        "label-only-boundary",
        (BoundaryAttack,),
        "boundary_attack",
        lambda s: s.config.boundary_count > 0 and s.model is not None,
        _boundary,
    ),
    AttackRun(
        "shadow",
        (ShadowAttack,),
        "shadow_models",
        lambda s: bool(s.config.shadows) and s.scores_exposed and s.population is not None,
        _shadows,
    ),
    AttackRun(
        "reference",
        (LiRA, RMIA, TrainedAttack),
        "reference_models",
        lambda s: bool(s.config.references) and s.scores_exposed,
        _references,
    ),
)


def run_attacks(session: Session) -> list[Evaluated]:
    """Every registered run that applies, each timed under its stage."""
    evaluated: list[Evaluated] = []
    for run in ATTACK_RUNS:
        if run.applies(session):
            with session.context.stage(run.stage):
                evaluated += run.run(session)
    return evaluated
