"""``codeaudit membership`` as a check: the target's outputs once, every registered attack
(:mod:`codeaudit.membership.runs`), then the judgement (:mod:`codeaudit.membership.judge`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from codeaudit.check import Check, Context, DataInput, Inputs, Outcome, Output, OutputPath
from codeaudit.data.samples import Dataset
from codeaudit.membership.attacks.threshold import SIGNALS
from codeaudit.membership.attacks.trained import DISTANCE_FEATURE_SETS
from codeaudit.membership.evaluate import SELECTED, Evaluated, attack_pairs, make_folds
from codeaudit.membership.features import (
    BLOCK_NEEDS,
    FeatureSet,
    cache_key,
    extract_features,
    feature_set_usable,
    is_default_spec,
    parse_feature_sets,
    read_cache_entry,
    store_cached,
    usable_features,
)
from codeaudit.membership.inputs import Verified, verify_inputs
from codeaudit.membership.judge import (
    attack_row,
    blind_baseline,
    check_sets,
    data_warnings,
    ranked,
    risk_key,
    shift_verdict,
    shift_warnings,
    tpr_at_1,
    verdict,
)
from codeaudit.membership.result import (
    BlindBaseline,
    ExposedSample,
    FeatureRow,
    MembershipResult,
    Utility,
)
from codeaudit.membership.runs import BASELINE_FAMILY, Session, run_attacks
from codeaudit.report.model import Header


def check_settings(config: Any) -> None:
    """What the config cannot check itself: the feature-set names."""
    parse_feature_sets(config.features)


def features_for(
    model: Any,
    identity: str,
    dataset: Dataset,
    config: Any,
    warnings: list[str] | None = None,
) -> FeatureSet:
    """The model's outputs on a data set, from ``--cache-dir`` when they are there; a damaged
    entry is recomputed (and said in ``warnings``)."""
    if not config.cache_dir:
        return extract_features(model, dataset, batch_size=config.batch_size)
    key = cache_key(identity, dataset.sha256, model.max_len, ",".join(dataset.ids[:1]))
    cached, damaged = read_cache_entry(Path(config.cache_dir), key, len(dataset))
    if cached is not None and cached.ids == tuple(dataset.ids):
        return cached
    if (damaged or cached is not None) and warnings is not None:
        warnings.append(
            f"{config.cache_dir}: cache entry features-{key}.npz was damaged (too large, "
            "malformed, non-finite or not these samples) and was recomputed"
        )
    features = extract_features(model, dataset, batch_size=config.batch_size)
    store_cached(Path(config.cache_dir), key, features)
    return features


def hardened_warning(loaded: Any, config: Any, usable: frozenset[str], scores: bool) -> str:
    named = {f for fs in parse_feature_sets(config.features) for f in fs}
    hidden = sorted(f for f in named if BLOCK_NEEDS.get(f, f) not in usable)
    skipped = [s for s in SIGNALS if not set(SIGNALS[s][0]) <= usable]
    d = loaded.defense
    return (
        f"{config.model} is hardened ({d.get('kind')}, expose {d.get('expose')}, sigma "
        f"{float(d.get('sigma', 0)):.4g}): attacks read "
        f"only what it releases ({', '.join(sorted(usable))}); not exposed, so not attacked: "
        f"{', '.join(hidden) or 'nothing'} (feature sets), "
        f"{', '.join(skipped) or 'none'} (threshold signals)"
        + ("" if scores else "; no shadow or reference attacks without scores")
    )


def distance_sets(spec: str | None, usable: frozenset[str]) -> list[tuple[str, ...]]:
    """The sets the distance-based attack models (k-NN, SVM) read beside ``--features``' when it
    is left at its default (:data:`DISTANCE_FEATURE_SETS`: the probabilities and the label); none
    when the sets are named, which every named classifier then reads alike."""
    if not is_default_spec(spec):
        return []
    return [fs for fs in DISTANCE_FEATURE_SETS if feature_set_usable(fs, usable)]


class MembershipCheck(Check):
    command = "membership"

    def validate(self, config: Any) -> None:
        check_settings(config)

    def data_inputs(self, config: Any) -> list[DataInput]:
        found = [DataInput("members", config.members), DataInput("nonmembers", config.nonmembers)]
        if config.population:
            found.append(DataInput("population", config.population))
        return found

    def output_paths(self, config: Any) -> list[OutputPath]:
        found = [OutputPath("roc-plot", config.plot, "plot")] if config.plot else []
        if config.risk_scores:
            found.append(OutputPath("risk-scores", config.risk_scores, "risk scores"))
        return found

    def check_inputs(self, inputs: Inputs, config: Any) -> None:
        from codeaudit.io import check_output_dir

        if config.cache_dir:
            check_output_dir(config.cache_dir, "cache directory")
        verified = self._verified(inputs, config)
        check_sets(verified.members, verified.nonmembers, config.folds)
        loaded = inputs.model
        if (config.shadows or config.references) and "confidence" in usable_features(loaded.model):
            from codeaudit.membership.references import recipe_of

            recipe_of(loaded.model, loaded.metadata, seed=config.seed)  # fails now, not later

    @staticmethod
    def _verified(inputs: Inputs, config: Any) -> Verified:
        """The members and non-members less those on the wrong side of the recorded split."""
        return verify_inputs(
            inputs.dataset("members"),
            inputs.dataset("nonmembers"),
            str(config.model),
            inputs.model.metadata,
        )

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        loaded = inputs.model
        verified = self._verified(inputs, config)
        members, nonmembers = verified.members, verified.nonmembers
        usable = usable_features(loaded.model)
        warnings = [*verified.warnings, *self._input_warnings(inputs, verified, config, usable)]
        with context.stage("features"):
            context.report("features", 0, 2)
            f_members = features_for(loaded.model, loaded.identity, members, config, warnings)
            context.report("features", 1, 2)
            f_nonmembers = features_for(loaded.model, loaded.identity, nonmembers, config, warnings)
            context.report("features", 2, 2)
        for name, part in (("members", f_members), ("non-members", f_nonmembers)):
            if part.truncated.any():
                warnings.append(
                    f"{int(part.truncated.sum())} of {len(part)} {name} truncated at "
                    f"{loaded.model.max_len} tokens: the model, and so the audit, sees only "
                    "their start"
                )
        session = self._session(inputs, verified, config, context, usable, f_members, f_nonmembers)
        evaluated = run_attacks(session)
        warnings += session.warnings
        result = self._judge(session, evaluated, f_members, f_nonmembers, warnings, loaded)
        result = dataclasses.replace(result, inputs=verified.check)
        outputs: tuple[Output, ...] = ()
        if config.plot:
            from codeaudit.membership.plot import roc_png

            png = roc_png(result.roc_curves, len(nonmembers))
            outputs = (Output("roc-plot", config.plot, png),)
        if config.risk_scores:
            from codeaudit.membership.risk import member_risk

            with context.stage("risk_scores"):
                summary, data = member_risk(
                    evaluated, result.best, f_members, f_nonmembers, usable, config
                )
            result = dataclasses.replace(result, risk_scores=summary)
            outputs += (Output("risk-scores", config.risk_scores, data),)
        return Outcome(result, outputs)

    def _input_warnings(
        self, inputs: Inputs, verified: Verified, config: Any, usable: frozenset[str]
    ) -> list[str]:
        loaded = inputs.model
        warnings = data_warnings(verified.members, verified.nonmembers)
        if loaded.defense is not None:
            warnings.append(hardened_warning(loaded, config, usable, "confidence" in usable))
        for data in inputs.data.values():
            if data.skipped:
                warnings.append(f"{data.path}: skipped {len(data.skipped)} invalid record(s)")
        return warnings

    def _session(
        self,
        inputs: Inputs,
        verified: Verified,
        config: Any,
        context: Context,
        usable: frozenset[str],
        f_members: FeatureSet,
        f_nonmembers: FeatureSet,
    ) -> Session:
        members, nonmembers = verified.members, verified.nonmembers
        membership = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(np.int64)
        return Session(
            config=config,
            features=FeatureSet.concat([f_members, f_nonmembers]),
            membership=membership,
            candidates=Dataset(
                samples=members.samples + nonmembers.samples, path="candidates", sha256=None
            ),
            folds=make_folds(membership, config.folds, config.seed),
            usable=usable,
            feature_sets=[
                fs for fs in parse_feature_sets(config.features) if feature_set_usable(fs, usable)
            ],
            distance_sets=distance_sets(config.features, usable),
            context=context,
            model=inputs.model.model,
            metadata=inputs.model.metadata,
            population=inputs.data.get("population"),
        )

    def _judge(
        self,
        session: Session,
        evaluated: list[Evaluated],
        f_members: FeatureSet,
        f_nonmembers: FeatureSet,
        warnings: list[str],
        loaded: Any,
    ) -> MembershipResult:
        from codeaudit.membership.curves import roc_curves

        config = session.config
        baselines = [ev for ev in evaluated if ev.family == BASELINE_FAMILY]
        evaluated = [ev for ev in evaluated if ev.family != BASELINE_FAMILY]
        rows = sorted((attack_row(ev) for ev in evaluated), key=risk_key)
        contenders = ranked(rows)  # the trained models' selection, not their maximum
        best = contenders[0]
        best_tpr = max(contenders, key=lambda r: (tpr_at_1(r), r.auc))
        utility = utility_of(f_members, f_nonmembers)
        blind = blind_baseline(baselines, best)
        risk, text = verdict(best, best_tpr, utility)
        if blind is not None and blind.shift:
            risk, text = shift_verdict(blind.row, best)
        unk = {
            "members": float(f_members.unk_rate.mean()),
            "nonmembers": float(f_nonmembers.unk_rate.mean()),
        }
        unk_row = next((r for r in rows if r.attack == "threshold-unknown-tokens"), None)
        warnings[:0] = shift_warnings(blind, best)  # first: it decides what the rest mean
        warnings += leak_warnings(rows, unk, unk_row, blind)
        return MembershipResult(
            header=Header(command=self.command),
            checkpoint=loaded.info(),
            verdict=text,
            risk=risk,
            best=best,
            best_tpr=best_tpr,
            attacks=tuple(rows),
            by_features=by_features(rows, session.feature_sets + session.distance_sets),
            utility=utility,
            n_members=len(f_members),
            n_nonmembers=len(f_nonmembers),
            unknown_token_rate=unk,
            tokenizer_channel_auc=unk_row.auc if unk_row is not None else None,
            settings=settings_of(config, session),
            timings={},
            top_risk=top_risk(evaluated, best, session.features, len(f_members), config.top_risk),
            roc_plot=config.plot,
            roc_curves=roc_curves(evaluated, session.membership),
            warnings=tuple(warnings),
            blind_baseline=blind,
            distribution_shift=bool(blind is not None and blind.shift),
        )


def utility_of(f_members: FeatureSet, f_nonmembers: FeatureSet) -> Utility:
    from codeaudit.metrics import classification_metrics

    m = classification_metrics(f_members.labels, f_members.predicted)
    n = classification_metrics(f_nonmembers.labels, f_nonmembers.predicted)
    gap = float(m["accuracy"]) - float(n["accuracy"])
    return Utility(
        members_accuracy=float(m["accuracy"]),
        members_f1=float(m["f1"]),
        nonmembers_accuracy=float(n["accuracy"]),
        nonmembers_f1=float(n["f1"]),
        generalization_gap=gap,
        label_only_floor=0.5 + gap / 2,
    )


def by_features(rows: list[Any], feature_sets: list[tuple[str, ...]]) -> tuple[FeatureRow, ...]:
    """The best trained attack on each feature set, strongest first."""
    found = []
    for feature_set in feature_sets:
        name = "+".join(feature_set)
        candidates = [
            r for r in rows if r.family == "trained" and r.features == name and r.attack != SELECTED
        ]
        if candidates:
            top = min(candidates, key=risk_key)
            found.append(FeatureRow(name, top.attack, top.auc, top.tpr_at_fpr))
    return tuple(sorted(found, key=lambda r: -r.auc))


def leak_warnings(
    rows: list[Any], unk: dict[str, float], unk_row: Any, blind: BlindBaseline | None = None
) -> list[str]:
    """The tokenizer channel and the label-only check. An unknown-token rate that differs
    between members and non-members is a leak the model exposes when the two sets come from one
    distribution (its vocabulary was built on the members), and mostly the shift when they do
    not: the message says which the blind baseline supports."""
    warnings = []
    if unk_row is not None and unk_row.auc >= 0.6:
        rates = (
            f"({unk['members']:.1%} on members vs {unk['nonmembers']:.1%} on non-members, "
            f"AUC {unk_row.auc:.3f})"
        )
        if blind is not None and blind.shift:
            warnings.append(
                f"the unknown-token rate differs {rates}, but the two sets differ in "
                f"distribution (model-free baseline AUC {blind.row.auc:.3f}): this is the shift "
                "at least as much as a tokenizer leak; audit same-distribution sets to tell"
            )
        else:
            same = (
                f" on sets a model-free baseline does not tell apart (its AUC {blind.row.auc:.3f})"
                if blind is not None
                else ""
            )
            warnings.append(
                f"the tokenizer alone leaks membership: its unknown-token rate differs {rates}"
                f"{same}; the vocabulary was built on the training data, so a deployed model "
                "must not expose it (harden masks it) and a larger --min-freq or a subword "
                "tokenizer shrinks it"
            )
    scores = [r for r in rows if r.family != "label-only"] or rows
    correctness = next(r.auc for r in rows if r.attack == "label-only-correctness")
    if scores[0].auc + 1e-9 < correctness:
        warnings.append("the label-only correctness attack beats every score attack")
    return warnings


def top_risk(
    evaluated: list[Evaluated], best: Any, features: FeatureSet, n_members: int, top: int
) -> tuple[ExposedSample, ...]:
    """The members the strongest attack is surest of (``--top-risk``); none when that attack
    scored only a sample of the candidates (the boundary attack)."""
    best_eval = next(
        ev
        for ev in evaluated
        if ev.attack == best.attack and "+".join(ev.features) == best.features
    )
    if top <= 0 or len(best_eval.scores) != len(features):
        return ()
    member_scores = best_eval.scores[:n_members]
    order = np.argsort(-member_scores, kind="stable")[:top]
    return tuple(
        ExposedSample(features.ids[i], round(float(member_scores[i]), 6), rank + 1)
        for rank, i in enumerate(order)
    )


def settings_of(config: Any, session: Session) -> dict[str, object]:
    return {
        "folds": config.folds,
        "attack_models": list(config.attack_classifiers),
        # the sets the trained attacks read (the distance models' own among them when they run)
        "feature_sets": len(
            {
                fs
                for _, fs in attack_pairs(
                    config.attack_classifiers, session.feature_sets, session.distance_sets
                )
            }
        ),
        "shadows": config.shadows,
        "references": config.references,
        "boundary_samples": config.boundary_count,
        "boundary_rewrites": config.boundary_rewrites,
        "exposed": sorted(session.usable),
        "bootstrap": config.n_boot,
        "device": session.context.device,
    }
