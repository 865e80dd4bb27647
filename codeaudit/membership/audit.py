"""``codeaudit membership``: load, extract features once, run every attack, judge."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codeaudit.config import MembershipConfig
from codeaudit.data.samples import Dataset
from codeaudit.errors import DataError, UsageError
from codeaudit.io import check_output_dir
from codeaudit.membership.attacks.label_only import BoundaryAttack, CorrectnessAttack
from codeaudit.membership.attacks.reference import RMIA, LiRA
from codeaudit.membership.attacks.shadow import ShadowAttack
from codeaudit.membership.attacks.threshold import SIGNALS, ThresholdAttack
from codeaudit.membership.attacks.trained import CLASSIFIERS
from codeaudit.membership.evaluate import (
    Evaluated,
    evaluate_trained,
    evaluate_unsupervised,
    make_folds,
)
from codeaudit.membership.features import (
    FEATURES,
    FeatureSet,
    cache_key,
    extract_features,
    load_cached,
    parse_feature_sets,
    store_cached,
    usable_features,
)
from codeaudit.membership.result import (
    AttackRow,
    ExposedSample,
    FeatureRow,
    MembershipResult,
    Utility,
)
from codeaudit.metrics import classification_metrics
from codeaudit.report.model import Artifact, Header

MIN_SAMPLES = 10
Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _normalised(code: str) -> bytes:
    """A digest of the code with whitespace normalised (digests, not copies of every member's
    code, are what the overlap check holds)."""
    import hashlib

    text = " ".join(code.split()).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=16).digest()


def data_warnings(members: Dataset, nonmembers: Dataset) -> list[str]:
    """What makes a membership audit misleading: overlap and very different set sizes."""
    warnings = []
    member_texts = {_normalised(s.code) for s in members}
    overlap = sum(_normalised(s.code) in member_texts for s in nonmembers)
    if overlap:
        warnings.append(
            f"{overlap} non-member functions are identical to a member after whitespace "
            "normalisation: the model has seen them, so they inflate the false-positive rate and "
            "understate leakage; remove them"
        )
    ratio = max(len(members), len(nonmembers)) / max(1, min(len(members), len(nonmembers)))
    if ratio > 3:
        warnings.append(
            f"members ({len(members)}) and non-members ({len(nonmembers)}) differ {ratio:.1f}x in "
            "size: AUC and TPR at low FPR stay valid, but accuracy-type metrics and the "
            "confidence intervals are dominated by the smaller set"
        )
    return warnings


def _row(ev: Evaluated) -> AttackRow:
    s = ev.score
    return AttackRow(
        attack=ev.attack,
        family=ev.family,
        features="+".join(ev.features),
        auc=s.auc,
        auc_ci=s.auc_ci,
        accuracy=s.balanced_accuracy,
        precision=s.precision,
        recall=s.recall,
        f1=s.f1,
        advantage=s.advantage,
        tpr_at_fpr=dict(s.tpr_at_fpr),
        n_members=s.n_members,
        n_nonmembers=s.n_nonmembers,
        seconds=round(ev.seconds, 4),
    )


def _tpr1(row: AttackRow) -> float:
    """TPR at 1% FPR for ranking; -1 when the data cannot measure it."""
    value = row.tpr_at_fpr.get("0.01")
    return -1.0 if value is None else value


def _risk_key(row: AttackRow) -> tuple[float, float, str, str]:
    return (-row.auc, -_tpr1(row), row.attack, row.features)


def verdict(best: AttackRow, best_tpr: AttackRow, utility: Utility) -> tuple[str, str]:
    """(risk level, one plain-language paragraph)."""
    lo, hi = best.auc_ci
    tpr = max(_tpr1(best_tpr), 0.0)
    measurable = best_tpr.tpr_at_fpr.get("0.01") is not None
    if best.auc >= 0.6 or tpr >= 0.1:
        risk = "high"
        head = "High membership leakage."
    elif best.auc >= 0.55:
        risk = "medium"
        head = "Moderate membership leakage."
    elif lo > 0.5:
        risk = "low"
        head = "Low but measurable membership leakage."
    else:
        risk = "none"
        head = "No measurable membership leakage."
    text = (
        f"{head} The strongest attack ({best.attack} on {best.features}) tells the model's "
        f"training functions from unseen ones with AUC {best.auc:.3f} (95% CI {lo:.3f}-{hi:.3f}; "
        "0.5 is guessing). "
        + (
            f"At a 1% false-positive rate, {best_tpr.attack} on {best_tpr.features} identifies "
            f"{tpr:.1%} of the training functions. "
            if measurable
            else "There are too few non-members to measure a 1% false-positive rate "
            "(at least 100 are needed). "
        )
        + f"The model is right on {utility.members_accuracy:.1%} of its training functions and "
        f"{utility.nonmembers_accuracy:.1%} of unseen ones"
    )
    if utility.generalization_gap > 0.05:
        text += (
            f": that {utility.generalization_gap:.1%} gap alone lets an attacker who sees only "
            f"labels reach AUC {utility.label_only_floor:.3f}."
        )
    elif risk == "none":
        text += ": it generalises, and its outputs do not give its training data away."
    else:
        text += "."
    return risk, text


def _features_for(
    model: Any, loaded_sha: str, dataset: Dataset, config: MembershipConfig
) -> FeatureSet:
    if config.cache_dir:
        key = cache_key(loaded_sha, dataset.sha256, model.max_len, ",".join(dataset.ids[:1]))
        cached = load_cached(Path(config.cache_dir), key)
        if cached is not None and cached.ids == tuple(dataset.ids):
            return cached
    features = extract_features(model, dataset, batch_size=config.batch_size)
    if config.cache_dir:
        store_cached(Path(config.cache_dir), key, features)
    return features


def _check_sets(members: Dataset, nonmembers: Dataset, folds: int) -> None:
    for name, data in (("members", members), ("non-members", nonmembers)):
        if len(data) < MIN_SAMPLES:
            raise DataError(
                f"{data.path}: {len(data)} {name}: a membership audit needs at least "
                f"{MIN_SAMPLES} of each"
            )
        if len(data) < folds:
            raise UsageError(f"--folds {folds}: only {len(data)} {name}")
    labels = {s.label for s in members} | {s.label for s in nonmembers}
    if len(labels) < 2:
        raise DataError(
            f"{members.path}, {nonmembers.path}: every function has label {labels.pop()}; the "
            "audit needs both vulnerable and non-vulnerable functions (utility, loss-based "
            "attacks and reference models are defined per class)"
        )


def run_membership(
    config: MembershipConfig, *, progress: Progress | None = None
) -> MembershipResult:
    from codeaudit.data.loader import load_data
    from codeaudit.models.checkpoint import load_with
    from codeaudit.models.device import resolve_device
    from codeaudit.rules import evaluate, load_rules

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    if config.folds < 2:
        raise UsageError("--folds must be at least 2")
    if config.n_boot < 1:
        raise UsageError("--bootstrap must be at least 1")
    unknown = [c for c in config.classifiers if c not in CLASSIFIERS]
    if unknown or not config.classifiers:
        raise UsageError(
            f"--attack-models: unknown {', '.join(unknown) or '(none)'} "
            f"(use {', '.join(CLASSIFIERS)})"
        )
    if config.shadows and not config.population:
        raise UsageError("--shadows needs --population FILE (data the attacker owns)")
    if config.references and (config.references < 2 or config.references % 2):
        raise UsageError(f"--references {config.references}: use an even number of at least 2")
    feature_sets = parse_feature_sets(config.features)
    rules = load_rules(config.rules)
    if config.cache_dir:
        check_output_dir(config.cache_dir, "cache directory")
    timings: dict[str, float] = {}
    started = time.perf_counter()

    device = resolve_device(config.device)
    loaded = load_with(config.model, config.model_options, device=device)
    model = loaded.model
    # A hardened model (codeaudit harden) is audited through what it releases only.
    usable = usable_features(model)
    requested_sets = feature_sets
    feature_sets = [fs for fs in feature_sets if set(fs) <= usable]
    scores_exposed = "confidence" in usable  # shadow and reference attacks read scores
    use_shadows = bool(config.shadows) and scores_exposed
    use_references = bool(config.references) and scores_exposed
    members = load_data(config.members, config.data_options, require_labels=True)
    nonmembers = load_data(config.nonmembers, config.data_options, require_labels=True)
    population = (
        load_data(config.population, config.data_options, require_labels=True)
        if config.population
        else None
    )
    _check_sets(members, nonmembers, config.folds)
    warnings = data_warnings(members, nonmembers)
    if loaded.defense is not None:
        hidden = sorted({f for fs in requested_sets for f in fs} - usable)
        skipped = [s for s in SIGNALS if not set(SIGNALS[s][0]) <= usable]
        d = loaded.defense
        warnings.append(
            f"{config.model} is hardened ({d.get('kind')}, expose {d.get('expose')}, sigma "
            f"{float(d.get('sigma', 0)):.4g}): attacks read "
            f"only what it releases ({', '.join(sorted(usable))}); not exposed, so not attacked: "
            f"{', '.join(hidden) or 'nothing'} (feature sets), "
            f"{', '.join(skipped) or 'none'} (threshold signals)"
            + ("" if scores_exposed else "; no shadow or reference attacks without scores")
        )
    for data in (members, nonmembers, population):
        if data is not None and data.skipped:
            warnings.append(f"{data.path}: skipped {len(data.skipped)} invalid record(s)")
    timings["load"] = time.perf_counter() - started

    step = time.perf_counter()
    report("features", 0, 2)
    f_members = _features_for(model, loaded.identity, members, config)
    report("features", 1, 2)
    f_nonmembers = _features_for(model, loaded.identity, nonmembers, config)
    report("features", 2, 2)
    timings["features"] = time.perf_counter() - step
    for name, part in (("members", f_members), ("non-members", f_nonmembers)):
        if part.truncated.any():
            warnings.append(
                f"{int(part.truncated.sum())} of {len(part)} {name} truncated at "
                f"{model.max_len} tokens: the model, and so the audit, sees only their start"
            )
    features = FeatureSet.concat([f_members, f_nonmembers])
    membership = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(np.int64)
    candidates = Dataset(
        samples=members.samples + nonmembers.samples, path="candidates", sha256=None
    )
    folds = make_folds(membership, config.folds, config.seed)
    kw = {"n_boot": config.n_boot, "seed": config.seed}

    step = time.perf_counter()
    evaluated: list[Evaluated] = []
    for signal in SIGNALS:
        if not set(SIGNALS[signal][0]) <= usable:
            continue
        evaluated.append(
            evaluate_unsupervised(ThresholdAttack(signal), features, membership, folds, **kw)
        )
    evaluated.append(evaluate_unsupervised(CorrectnessAttack(), features, membership, folds, **kw))
    timings["threshold_attacks"] = time.perf_counter() - step

    step = time.perf_counter()
    report("trained attacks", 0, 1)
    if feature_sets:
        evaluated += evaluate_trained(
            config.classifiers, feature_sets, features, membership, folds, **kw
        )
    report("trained attacks", 1, 1)
    timings["trained_attacks"] = time.perf_counter() - step

    if config.boundary_samples > 0:
        step = time.perf_counter()
        rng = np.random.default_rng(config.seed)
        half = config.boundary_samples // 2
        pick = np.r_[
            rng.permutation(len(members))[: min(half, len(members))],
            len(members) + rng.permutation(len(nonmembers))[: min(half, len(nonmembers))],
        ]
        pick.sort()
        sub_membership = membership[pick]
        if min(sub_membership.sum(), len(pick) - sub_membership.sum()) >= config.folds:
            attack = BoundaryAttack(
                model,
                [candidates.samples[i] for i in pick],
                max_rewrites=config.boundary_rewrites,
                seed=config.seed,
                batch_size=config.batch_size,
            )
            report("label-only boundary attack", 0, 1)
            evaluated.append(
                evaluate_unsupervised(
                    attack,
                    features.subset(pick),
                    sub_membership,
                    make_folds(sub_membership, config.folds, config.seed),
                    **kw,
                )
            )
            report("label-only boundary attack", 1, 1)
        timings["boundary_attack"] = time.perf_counter() - step

    needs_recipe = use_shadows or use_references
    recipe = None
    if needs_recipe:
        from codeaudit.membership.references import recipe_of

        recipe = recipe_of(model, loaded.metadata, seed=config.seed)
    if use_shadows and population is not None and recipe is not None:
        from codeaudit.membership.references import train_shadows

        step = time.perf_counter()
        shadows = train_shadows(
            population,
            recipe,
            config.shadows,
            seed=config.seed,
            default_lang=model.default_lang,
            device=device,
            batch_size=config.batch_size,
            progress=lambda k, n: report("shadow models", k, n),
        )
        shadow = ShadowAttack(shadows, seed=config.seed).fit(features, membership)
        evaluated.append(evaluate_unsupervised(shadow, features, membership, folds, **kw))
        timings["shadow_models"] = time.perf_counter() - step
    if use_references and recipe is not None:
        from codeaudit.membership.references import train_references

        step = time.perf_counter()
        refs = train_references(
            candidates,
            recipe,
            config.references,
            seed=config.seed,
            default_lang=model.default_lang,
            population=population,
            device=device,
            batch_size=config.batch_size,
            progress=lambda k, n: report("reference models", k, n),
        )
        population_target = (
            extract_features(model, population, batch_size=config.batch_size)
            if population is not None
            else None
        )
        reference_evals = [
            evaluate_unsupervised(attack, features, membership, folds, **kw)
            for attack in (
                LiRA(refs, online=True),
                LiRA(refs, online=False),
                RMIA(refs, population_target=population_target),
            )
        ]
        evaluated += reference_evals
        # The reference-calibrated trained attack: the trained attack's inputs plus the LiRA
        # score. LiRA calibrates each sample's difficulty, the trained attack reads what phi
        # does not (the embedding); together they are stronger than either (docs/membership-
        # results.md). LiRA learns nothing from the target's membership, so using its score as
        # an input keeps the fold discipline intact.
        lira_scores = reference_evals[0].scores
        evaluated += evaluate_trained(
            config.classifiers,
            [(*(f for f in FEATURES if f in usable), "lira-online")],
            features,
            membership,
            folds,
            signals={"lira-online": lira_scores},
            family="reference",
            **kw,
        )
        timings["reference_models"] = time.perf_counter() - step

    rows = sorted((_row(ev) for ev in evaluated), key=_risk_key)
    score_rows = [r for r in rows if r.family != "label-only"] or rows
    best = rows[0]
    best_tpr = max(rows, key=lambda r: (_tpr1(r), r.auc))
    by_features = []
    for feature_set in feature_sets:
        name = "+".join(feature_set)
        candidates_rows = [r for r in rows if r.family == "trained" and r.features == name]
        if candidates_rows:
            top = min(candidates_rows, key=_risk_key)
            by_features.append(FeatureRow(name, top.attack, top.auc, top.tpr_at_fpr))
    by_features.sort(key=lambda r: -r.auc)

    m_metrics = classification_metrics(f_members.labels, f_members.predicted)
    n_metrics = classification_metrics(f_nonmembers.labels, f_nonmembers.predicted)
    gap = float(m_metrics["accuracy"]) - float(n_metrics["accuracy"])
    utility = Utility(
        members_accuracy=float(m_metrics["accuracy"]),
        members_f1=float(m_metrics["f1"]),
        nonmembers_accuracy=float(n_metrics["accuracy"]),
        nonmembers_f1=float(n_metrics["f1"]),
        generalization_gap=gap,
        label_only_floor=0.5 + gap / 2,
    )
    risk, text = verdict(best, best_tpr, utility)
    unk = {
        "members": float(f_members.unk_rate.mean()),
        "nonmembers": float(f_nonmembers.unk_rate.mean()),
    }
    unk_row = next((r for r in rows if r.attack == "threshold-unknown-tokens"), None)
    if unk_row is not None and unk_row.auc >= 0.6:
        warnings.append(
            f"the tokenizer alone leaks membership: unknown-token rate {unk['members']:.1%} on "
            f"members vs {unk['nonmembers']:.1%} on non-members (AUC {unk_row.auc:.3f}); a "
            "deployed model must not expose it (harden masks it) and a larger --min-freq or a "
            "subword tokenizer shrinks it"
        )
    if score_rows[0].auc + 1e-9 < next(r.auc for r in rows if r.attack == "label-only-correctness"):
        warnings.append("the label-only correctness attack beats every score attack")

    top_risk: tuple[ExposedSample, ...] = ()
    best_eval = next(
        ev
        for ev in evaluated
        if ev.attack == best.attack and "+".join(ev.features) == best.features
    )
    if config.top_risk > 0 and len(best_eval.scores) == len(features):
        member_scores = best_eval.scores[: len(members)]
        order = np.argsort(-member_scores, kind="stable")[: config.top_risk]
        top_risk = tuple(
            ExposedSample(f_members.ids[i], round(float(member_scores[i]), 6), rank + 1)
            for rank, i in enumerate(order)
        )

    from codeaudit.membership.curves import roc_curves

    curves = roc_curves(evaluated, membership)
    plot_path = None
    if config.plot:
        from codeaudit.membership.plot import write_roc_plot

        write_roc_plot(config.plot, curves, len(nonmembers), force=config.force)
        plot_path = config.plot

    timings["total"] = time.perf_counter() - started
    artifacts = [
        *loaded.artifacts(),
        Artifact("members", config.members, members.sha256),
        Artifact("nonmembers", config.nonmembers, nonmembers.sha256),
    ]
    if population is not None and config.population:
        artifacts.append(Artifact("population", config.population, population.sha256))
    result = MembershipResult(
        header=Header(command="membership", seed=config.seed, artifacts=tuple(artifacts)),
        checkpoint=loaded.info(),
        verdict=text,
        risk=risk,
        best=best,
        best_tpr=best_tpr,
        attacks=tuple(rows),
        by_features=tuple(by_features),
        utility=utility,
        n_members=len(members),
        n_nonmembers=len(nonmembers),
        unknown_token_rate=unk,
        tokenizer_channel_auc=unk_row.auc if unk_row is not None else None,
        settings={
            "folds": config.folds,
            "attack_models": list(config.classifiers),
            "feature_sets": len(feature_sets),
            "shadows": config.shadows,
            "references": config.references,
            "boundary_samples": config.boundary_samples,
            "boundary_rewrites": config.boundary_rewrites,
            "exposed": sorted(usable),
            "bootstrap": config.n_boot,
            "device": device,
        },
        timings={k: round(v, 3) for k, v in timings.items()},
        top_risk=top_risk,
        roc_plot=plot_path,
        roc_curves=curves,
        warnings=tuple(warnings),
    )
    target = config.model
    findings = evaluate(rules, result, command="membership", target=target)
    return dataclasses.replace(result, findings=findings)
