"""``codeaudit harden``: wrap a model with NMID, choose sigma, verify it, write what ships.

Order of work: check every input and output path; load the model (refusing one that is
already hardened); draw the key; with ``--members/--nonmembers`` observe the original model
once (outputs, token ids, rewrites), split into calibration and verification halves, choose
sigma on the first (``--sigma auto``), then run the membership suite on the original and the
hardened model on the second; build and check the exports; only then write the checkpoint, the
exports and the plot. An error at any step leaves no output file behind.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from codeaudit.config import HardenConfig
from codeaudit.data.samples import Dataset
from codeaudit.defense.calibrate import (
    DEFAULT_GRID,
    CurveEvaluator,
    SigmaCalibrator,
    calibration_split,
    sweep,
)
from codeaudit.defense.evaluate import (
    Observations,
    label_only_floor,
    label_only_suite,
    labels_only_suites,
    observe,
    query_margins,
    relabel,
    released_features,
    released_suite,
    score_roc_auc,
    score_suite,
    strongest,
)
from codeaudit.defense.result import (
    Calibration,
    ComparisonRow,
    CurvePoint,
    DefenseInfo,
    ExportInfo,
    HardenResult,
    UtilityRow,
    Verification,
)
from codeaudit.errors import DataError, HardenError, UsageError
from codeaudit.membership.attacks.threshold import SIGNALS
from codeaudit.membership.attacks.trained import CLASSIFIERS
from codeaudit.membership.evaluate import Evaluated, make_folds
from codeaudit.membership.features import all_feature_sets, extract_features, usable_features
from codeaudit.metrics import classification_metrics
from codeaudit.models.nmid import EXPOSES, NMID, Exposure, HardenedModel, parse_exposure
from codeaudit.report.model import Artifact, Header

Progress = Callable[[str, int, int], None]
MIN_SAMPLES = 10


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_config(config: HardenConfig) -> None:
    """Every usage error, before any work."""
    from codeaudit.defense.export import EXPORT_FORMATS
    from codeaudit.models.nmid import check_sigma

    if config.sigma is not None:
        try:
            check_sigma(config.sigma)
        except HardenError as exc:
            raise UsageError(f"--sigma: {exc}") from None
    parse_exposure(config.expose)
    if not 0.5 < config.target_auc <= 1.0:
        raise UsageError(f"--target-auc {config.target_auc}: use a value in (0.5, 1]")
    if not 0.0 <= config.calibration_slack < 0.5:
        raise UsageError(f"calibration slack {config.calibration_slack}: use a value in [0, 0.5)")
    if not 0.0 <= config.floor_margin < 0.5:
        raise UsageError(f"--floor-margin {config.floor_margin}: use a value in [0, 0.5)")
    if not 0.0 < config.calibration_share < 1.0:
        raise UsageError(f"--calibration-share {config.calibration_share}: use a value in (0, 1)")
    if config.queries < 1 or config.rewrites < 0 or config.boundary_samples < 0:
        raise UsageError("--queries must be >= 1, --rewrites and --boundary-samples >= 0")
    if config.boundary_rewrites < 1 or config.batch_size < 1 or config.n_boot < 1:
        raise UsageError("--boundary-rewrites, --batch-size and --bootstrap must be >= 1")
    if config.folds < 2:
        raise UsageError("--folds must be at least 2")
    unknown = [c for c in config.classifiers if c not in CLASSIFIERS]
    if unknown or not config.classifiers:
        raise UsageError(
            f"--attack-models: unknown {', '.join(unknown) or '(none)'} "
            f"(use {', '.join(CLASSIFIERS)})"
        )
    bad = [f for f in config.export if f not in EXPORT_FORMATS]
    if bad:
        raise UsageError(f"--export {bad[0]}: unknown format (use {', '.join(EXPORT_FORMATS)})")
    if config.export_output and not config.export:
        raise UsageError("--export-output needs --export torchscript")
    has_data = bool(config.members) and bool(config.nonmembers)
    if bool(config.members) != bool(config.nonmembers):
        raise UsageError("--members and --nonmembers go together")
    scores = config.expose != Exposure.LABEL.value
    if config.sigma is None and scores and not has_data:
        raise UsageError(
            "--sigma auto calibrates on --members and --nonmembers (functions the model trained "
            "on and functions it never saw); give them, or a fixed --sigma"
        )
    if (config.sweep or config.plot) and not has_data:
        raise UsageError("--sweep and --plot measure attacks: they need --members/--nonmembers")


def _outputs(config: HardenConfig) -> dict[str, str]:
    """Every file harden will write, checked (exists without --force, unwritable directory,
    the same file named twice, or the input checkpoint named as an output)."""
    from codeaudit.defense.export import default_export_path
    from codeaudit.io import check_output_path

    outputs = {"output": config.output}
    for fmt in config.export:
        outputs[f"export-{fmt}"] = config.export_output or default_export_path(config.output, fmt)
    if config.plot:
        outputs["plot"] = config.plot
    seen: dict[str, str] = {}
    for role, path in outputs.items():
        if os.path.exists(config.model) and _same_file(path, config.model):
            raise UsageError(f"{path}: the {role} would replace the input model; name another file")
        key = os.path.abspath(path)
        if key in seen:
            raise UsageError(f"{path}: named as both {seen[key]} and {role}")
        seen[key] = role
        check_output_path(path, force=config.force, what="plot" if role == "plot" else "model")
    return outputs


def _check_data(members: Dataset, nonmembers: Dataset, folds: int) -> None:
    for name, data in (("members", members), ("non-members", nonmembers)):
        if len(data) < MIN_SAMPLES:
            raise DataError(
                f"{data.path}: {len(data)} {name}: verifying a defence needs at least "
                f"{MIN_SAMPLES} of each"
            )
    labels = {s.label for s in members} | {s.label for s in nonmembers}
    if len(labels) < 2:
        raise DataError(
            f"{members.path}, {nonmembers.path}: every function has the same label; utility and "
            "loss-based attacks need both vulnerable and non-vulnerable functions"
        )


def _check_split(obs: Observations, index: np.ndarray, what: str, folds: int) -> None:
    member_count = int(obs.membership[index].sum())
    nonmember_count = len(index) - member_count
    need = max(folds, MIN_SAMPLES // 2)
    if min(member_count, nonmember_count) < need:
        raise DataError(
            f"the {what} split holds {member_count} members and {nonmember_count} non-members; "
            f"--sigma auto needs at least {need} of each on both halves (give more data, or a "
            "fixed --sigma to verify on all of it)"
        )


def _row(ev: Evaluated):  # type: ignore[no-untyped-def]
    from codeaudit.membership.judge import attack_row as membership_row

    return membership_row(ev)


def _tpr1(ev: Evaluated | None) -> float | None:
    return None if ev is None else ev.score.tpr_at_fpr.get("0.01")


def _name(ev: Evaluated) -> str:
    return f"{ev.attack} on {'+'.join(ev.features)}"


def _comparison(
    before: Sequence[Evaluated],
    after: Sequence[Evaluated],
    repeat: Sequence[Evaluated],
    rewrites: Sequence[Evaluated],
    usable_after: frozenset[str],
    queries: int,
    n_rewrites: int,
) -> list[ComparisonRow]:
    rows: list[ComparisonRow] = []

    def pair(group: str, name: str, b: Evaluated | None, a: Evaluated | None, note: str) -> None:
        rows.append(
            ComparisonRow(
                group,
                name,
                None if b is None else b.score.auc,
                _tpr1(b),
                None if a is None else a.score.auc,
                _tpr1(a),
                None if a is None else _name(a),
                note,
            )
        )

    for feature_set in all_feature_sets():
        b = strongest([e for e in before if e.family == "trained" and e.features == feature_set])
        a = strongest([e for e in after if e.family == "trained" and e.features == feature_set])
        exposed = set(feature_set) <= usable_after
        pair("feature set", "+".join(feature_set), b, a, "" if exposed else "not exposed")
    for signal in SIGNALS:
        attack = f"threshold-{signal}"
        b = next((e for e in before if e.attack == attack), None)
        a = next((e for e in after if e.attack == attack), None)
        pair("threshold", attack, b, a, "" if a is not None else "not exposed")
    note = "output noise cannot change this"
    for attack in ("label-only-correctness", "label-only-boundary"):
        b = next((e for e in before if e.attack == attack), None)
        a = next((e for e in after if e.attack == attack), None)
        if b is not None or a is not None:
            pair("label-only", attack, b, a, note)
    for name, prefix in (
        ("labels only: the score attacks on labels", "labels/"),
        ("labels only: averaged over rewrites", "labels/rewrites"),
    ):

        def chosen(group: Sequence[Evaluated], prefix: str = prefix) -> Evaluated | None:
            picked = [e for e in group if e.attack.startswith(prefix)]
            if prefix == "labels/":
                picked = [e for e in picked if not e.attack.startswith("labels/rewrites")]
            return strongest(picked)

        b, a = chosen(before), chosen(after)
        if b is not None or a is not None:
            pair("label-only", name, b, a, note)
    pair(
        "adaptive",
        f"repeat-averaging ({queries} queries)",
        None,
        strongest(list(repeat)),
        "" if repeat else "no scores released",
    )
    pair(
        "adaptive",
        f"rewrite-averaging (up to {n_rewrites} rewrites)",
        None,
        strongest(list(rewrites)),
        "" if rewrites else "no scores released" if n_rewrites else "off (--rewrites 0)",
    )
    return rows


def _utility(
    obs: Observations, after_predicted: np.ndarray, after_margin: np.ndarray
) -> list[UtilityRow]:
    rows = []
    clean_margin = obs.clean.logits[:, 1].astype(np.float64) - obs.clean.logits[:, 0]
    for split, mask in (("members", obs.membership == 1), ("non-members", obs.membership == 0)):
        labels = obs.clean.labels[mask]
        before = classification_metrics(labels, obs.clean.predicted[mask])
        after = classification_metrics(labels, after_predicted[mask])
        rows.append(
            UtilityRow(
                split=split,
                n=int(mask.sum()),
                accuracy_before=float(before["accuracy"]),
                accuracy_after=float(after["accuracy"]),
                f1_before=float(before["f1"]),
                f1_after=float(after["f1"]),
                roc_auc_before=score_roc_auc(labels, clean_margin[mask]),
                roc_auc_after=score_roc_auc(labels, after_margin[mask]),
            )
        )
    return rows


def verify(
    base,  # type: ignore[no-untyped-def]
    hardened: HardenedModel,
    defense: NMID,
    obs: Observations,
    config: HardenConfig,
    *,
    data_label: str,
    progress: Progress | None = None,
) -> Verification:
    """The membership suite on the original and on the hardened model, side by side."""

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    kw = {"n_boot": config.n_boot, "seed": config.seed}
    membership = obs.membership
    folds = make_folds(membership, config.folds, config.seed)
    label_kw = {
        "boundary_samples": config.boundary_samples,
        "boundary_rewrites": config.boundary_rewrites,
        "n_folds": config.folds,
        "batch_size": config.batch_size,
        **kw,
    }

    def labels_only(logits: np.ndarray) -> list[Evaluated]:
        single, averaged = labels_only_suites(obs, logits, folds, config.classifiers, **kw)
        return single + averaged

    report("auditing the original model", 0, 1)
    before = score_suite(
        obs.clean, membership, folds, usable_features(base), config.classifiers, **kw
    )
    before += label_only_suite(base, obs, obs.clean, folds, **label_kw)
    before += labels_only(obs.clean.logits)

    report("auditing the hardened model", 0, 1)
    after_features = extract_features(hardened, obs.dataset, batch_size=config.batch_size)
    labels_changed = int((after_features.predicted != obs.clean.predicted).sum())
    usable_after = usable_features(hardened)
    scores_after = score_suite(
        after_features, membership, folds, usable_after, config.classifiers, **kw
    )
    after = scores_after + label_only_suite(hardened, obs, after_features, folds, **label_kw)
    labels_after = labels_only(after_features.logits)
    after += labels_after

    repeat: list[Evaluated] = []
    rewrites: list[Evaluated] = []
    if defense.expose_ is not Exposure.LABEL:
        report("adaptive attacks", 0, 2)
        answers = [
            query_margins(defense, base, obs.clean.logits, obs.encodings)
            for _ in range(config.queries)
        ]
        repeat = relabel(
            score_suite(
                released_features(obs.clean, np.mean(answers, axis=0), defense.expose_.value),
                membership,
                folds,
                usable_after,
                config.classifiers,
                **kw,
            ),
            f"repeat{config.queries}",
        )
        report("adaptive attacks", 1, 2)
        if len(obs.variant_logits):
            variant = query_margins(defense, base, obs.variant_logits, obs.variant_encodings)
            _, rewrites = released_suite(
                obs,
                answers[0],
                variant,
                defense.expose_.value,
                folds,
                config.classifiers,
                rewrites_label=f"rewrites{config.rewrites}",
                **kw,
            )
        report("adaptive attacks", 2, 2)

    floor = label_only_floor(obs.clean.predicted, obs.clean.labels, membership)
    single_labels = strongest([e for e in labels_after if "/rewrites" not in e.attack])
    rewrite_labels = strongest([e for e in labels_after if "/rewrites" in e.attack])
    labels_only_auc = max(floor, single_labels.score.auc if single_labels else 0.0)
    rewrite_labels_auc = None if rewrite_labels is None else rewrite_labels.score.auc
    target = max(config.target_auc, labels_only_auc + config.floor_margin)
    rewrite_target = (
        None
        if rewrite_labels_auc is None
        else max(config.target_auc, rewrite_labels_auc + config.floor_margin)
    )
    best_before = strongest(before)
    assert best_before is not None
    single = strongest(scores_after)
    repeat_best = strongest(repeat)
    rewrite_best = strongest(rewrites)
    best_score = strongest(scores_after + repeat)
    label_best = strongest([e for e in after if e.family == "label-only"])
    assert label_best is not None
    met = best_score is None or best_score.score.auc <= target + 1e-12
    if rewrite_best is not None and rewrite_target is not None:
        met = met and rewrite_best.score.auc <= rewrite_target + 1e-12
    after_margin = after_features.logits[:, 1].astype(np.float64) - after_features.logits[:, 0]
    utility = _utility(obs, after_features.predicted, after_margin)
    held_out = next(u for u in utility if u.split == "non-members")
    drop = (
        None
        if held_out.roc_auc_before is None or held_out.roc_auc_after is None
        else held_out.roc_auc_before - held_out.roc_auc_after
    )

    def gain(ev: Evaluated | None) -> float | None:
        return None if ev is None or single is None else ev.score.auc - single.score.auc

    return Verification(
        data=data_label,
        n_members=int(membership.sum()),
        n_nonmembers=int(len(membership) - membership.sum()),
        label_only_floor=floor,
        labels_only_auc=labels_only_auc,
        rewrite_labels_only_auc=rewrite_labels_auc,
        target=target,
        rewrite_target=rewrite_target,
        best_auc_before=best_before.score.auc,
        best_attack_before=_name(best_before),
        best_score_auc_after=None if best_score is None else best_score.score.auc,
        best_score_attack_after=None if best_score is None else _name(best_score),
        excess_over_floor=None if best_score is None else best_score.score.auc - labels_only_auc,
        rewrite_averaging_auc=None if rewrite_best is None else rewrite_best.score.auc,
        rewrite_excess=None
        if rewrite_best is None or rewrite_labels_auc is None
        else rewrite_best.score.auc - rewrite_labels_auc,
        target_met=met,
        label_only_auc=label_best.score.auc,
        single_query_auc=None if single is None else single.score.auc,
        repeat_averaging_auc=None if repeat_best is None else repeat_best.score.auc,
        averaging_gain=gain(repeat_best),
        rewrite_averaging_gain=gain(rewrite_best),
        labels_changed=labels_changed,
        roc_auc_drop=drop,
        rows=tuple(
            _comparison(
                before, after, repeat, rewrites, usable_after, config.queries, config.rewrites
            )
        ),
        utility=tuple(utility),
        attacks_before=tuple(sorted((_row(e) for e in before), key=lambda r: -r.auc)),
        attacks_after=tuple(
            sorted((_row(e) for e in after + repeat + rewrites), key=lambda r: -r.auc)
        ),
    )


def _verdict(
    defense: DefenseInfo,
    verification: Verification | None,
    calibration: Calibration | None,
) -> tuple[str, str]:
    head = (
        f"NMID (expose {defense.expose}, sigma {defense.sigma:.4g}"
        f"{', calibrated' if defense.sigma_source == 'calibrated' else ''})"
    )
    if verification is None:
        return "unverified", (
            f"{head} was applied but not verified: give --members and --nonmembers to measure "
            "what it protects against."
        )
    v = verification
    status = "holds" if v.target_met else "partial"
    floors = (
        f"The label-only floor is {v.label_only_floor:.3f} (0.5 + half the "
        f"{2 * (v.label_only_floor - 0.5):.1%} accuracy gap between members and non-members)"
        + (
            f"; the same attacks fed labels only reach {v.labels_only_auc:.3f}"
            if v.labels_only_auc > v.label_only_floor + 0.005
            else ""
        )
        + (
            f", and {v.rewrite_labels_only_auc:.3f} from the labels of rewritten functions"
            if v.rewrite_labels_only_auc is not None
            else ""
        )
        + f"; the strongest label-only attack reaches {v.label_only_auc:.3f}. No output "
        "defence goes below these: output noise cannot stop a label-only attacker."
    )
    if v.best_score_auc_after is None:
        text = f"{head} releases labels only, so no score attack applies. {floors}"
    else:
        verb = "holds" if v.target_met else "does not hold"
        text = (
            f"{head} {verb} on {v.data}: the strongest attack that sees scores, repeated-query "
            f"averaging included ({v.best_score_attack_after}), reaches AUC "
            f"{v.best_score_auc_after:.3f} (target {v.target:.3f}) against "
            f"{v.best_auc_before:.3f} before ({v.best_attack_before})"
            + (
                f"; averaging answers over rewrites reaches {v.rewrite_averaging_auc:.3f} "
                f"(target {v.rewrite_target:.3f})"
                if v.rewrite_averaging_auc is not None and v.rewrite_target is not None
                else ""
            )
            + f". {floors}"
        )
    removable = max(v.best_auc_before - v.labels_only_auc, 0.0)
    left = "" if v.excess_over_floor is None else f", {max(v.excess_over_floor, 0.0):.3f} left"
    text += (
        f" Of the leakage, masking and noise can remove the part above the labels-only level "
        f"({removable:.3f} AUC before hardening{left}); the rest "
        f"({v.labels_only_auc - 0.5:+.3f} above chance) only retraining removes: "
        "regularisation, early stopping, more data or DP training. Accuracy and F1 are "
        "unchanged (every prediction is the original model's)."
    )
    if v.roc_auc_drop is not None:
        text += (
            f" The vulnerability score's ROC AUC on non-members moved by {-v.roc_auc_drop:+.3f}."
        )
    if calibration is not None and not calibration.reached:
        text += " Calibration met its targets at no sigma tried on the calibration split."
    return status, text


def run_harden(
    config: HardenConfig, *, progress: Progress | None = None
) -> tuple[HardenedModel, HardenResult]:
    """Harden, calibrate, verify, export and write; returns the hardened model and the report."""
    from codeaudit.data.loader import load_data
    from codeaudit.defense.export import (
        build_torchscript,
        compare_with_wrapper,
        export_metadata,
        save_hardened,
        torchscript_bytes,
        write_bytes,
    )
    from codeaudit.io import sha256_bytes, sha256_file
    from codeaudit.membership.judge import data_warnings
    from codeaudit.models.checkpoint import load_with
    from codeaudit.models.device import resolve_device
    from codeaudit.rules import evaluate, load_rules

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    started = time.perf_counter()
    timings: dict[str, float] = {}
    check_config(config)
    outputs = _outputs(config)
    rules = load_rules(config.rules)
    device = resolve_device(config.device)
    loaded = load_with(config.model, config.model_options, device=device)
    if loaded.defense is not None or isinstance(loaded.model, HardenedModel):
        d = loaded.defense or {}
        raise HardenError(
            f"{config.model}: already hardened (NMID, expose {d.get('expose')}, sigma "
            f"{d.get('sigma')}); harden the original model (sha256 "
            f"{str(d.get('parent_sha256'))[:16]}) instead"
        )
    base = loaded.model
    expose = parse_exposure(config.expose)
    scores = expose is not Exposure.LABEL
    warnings: list[str] = []
    if loaded.trusted_pickle:
        warnings.append(
            f"{config.model}: loaded through full unpickling (--trust-checkpoint); the hardened "
            "checkpoint is written weights-only"
        )
    defense = NMID(config.sigma or 0.0, expose.value, key=config.key).fit(base)
    if config.sigma is not None:
        sigma_source = "given"
    else:
        sigma_source = "calibrated" if scores else "unused (labels only)"
    if not scores and config.sigma:
        warnings.append("--expose label releases no scores: the noise has no effect")
    timings["load"] = time.perf_counter() - started

    members = nonmembers = None
    obs: Observations | None = None
    calibration: Calibration | None = None
    verification: Verification | None = None
    curve: tuple[CurvePoint, ...] = ()
    has_data = bool(config.members and config.nonmembers)
    if has_data:
        step = time.perf_counter()
        assert config.members and config.nonmembers
        members = load_data(config.members, config.data_options, require_labels=True)
        nonmembers = load_data(config.nonmembers, config.data_options, require_labels=True)
        _check_data(members, nonmembers, config.folds)
        warnings += data_warnings(members, nonmembers)
        obs = observe(
            base,
            members,
            nonmembers,
            rewrites=config.rewrites,
            seed=config.seed,
            batch_size=config.batch_size,
            progress=progress,
        ).with_noise(defense, base)
        if config.rewrites:
            without = len(obs) - len(np.unique(obs.variant_owner))
            if without:
                warnings.append(
                    f"{without} of {len(obs)} functions offer no site for a semantics-preserving "
                    "rewrite; rewrite averaging uses their single answer"
                )
        timings["observe"] = time.perf_counter() - step

        split = config.sigma is None and scores
        if split:
            cal_index, ver_index = calibration_split(
                obs.samples, obs.membership, config.calibration_share, config.seed
            )
            _check_split(obs, cal_index, "calibration", config.folds)
            _check_split(obs, ver_index, "verification", config.folds)
            step = time.perf_counter()
            calibrator = SigmaCalibrator(
                config.target_auc,
                floor_margin=config.floor_margin,
                slack=config.calibration_slack,
            )
            evaluator = CurveEvaluator(
                obs.subset(cal_index),
                expose.value,
                classifiers=config.classifiers,
                folds=config.folds,
                seed=config.seed,
            )
            calibrator.fit(evaluator, progress=lambda k, n: report("calibrating sigma", k, n))
            calibration = Calibration(
                target_auc=config.target_auc,
                floor_margin=config.floor_margin,
                slack=calibrator.slack,
                label_only_floor=calibrator.floor_,
                labels_only_auc=calibrator.labels_only_auc_,
                rewrite_labels_only_auc=calibrator.rewrite_labels_only_auc_,
                effective_target=calibrator.effective_target_,
                rewrite_target=calibrator.rewrite_target_,
                sigma=calibrator.sigma_,
                reached=calibrator.reached_,
                auc_at_sigma=calibrator.auc_at_sigma_,
                rewrite_auc_at_sigma=calibrator.rewrite_auc_at_sigma_,
                n_members=int(evaluator.obs.membership.sum()),
                n_nonmembers=int(len(evaluator.obs) - evaluator.obs.membership.sum()),
                points=calibrator.points_,
            )
            if calibrator.labels_only_auc_ + config.floor_margin > config.target_auc:
                warnings.append(
                    f"labels alone give away AUC {calibrator.labels_only_auc_:.3f} on the "
                    f"calibration split (correctness floor {calibrator.floor_:.3f}) and no "
                    f"output defence goes below that, so the target was raised from "
                    f"{config.target_auc} to that + --floor-margin {config.floor_margin} = "
                    f"{calibrator.effective_target_:.3f}"
                )
            if not calibrator.reached_:
                warnings.append(
                    f"no sigma up to {max(DEFAULT_GRID):g} met the targets on the calibration "
                    f"split; using the least leaky one ({calibrator.sigma_:g})"
                )
            defense = defense.with_sigma(calibrator.sigma_)
            timings["calibration"] = time.perf_counter() - step
            ver_obs = obs.subset(ver_index)
            data_label = "the verification split (disjoint from calibration)"
        else:
            ver_obs = obs
            data_label = "all the given data"
    hardened = defense.transform(base, parent_sha256=loaded.sha256)

    if obs is not None:
        step = time.perf_counter()
        verification = verify(
            base, hardened, defense, ver_obs, config, data_label=data_label, progress=progress
        )
        timings["verification"] = time.perf_counter() - step
        if verification.labels_changed:  # never ship a model whose predictions changed
            raise RuntimeError(
                f"NMID changed {verification.labels_changed} predictions; nothing was written"
            )
        if config.sweep or config.plot:
            step = time.perf_counter()
            curve = sweep(
                CurveEvaluator(
                    ver_obs,
                    expose.value,
                    classifiers=config.classifiers,
                    folds=config.folds,
                    seed=config.seed,
                ),
                DEFAULT_GRID,
                progress=lambda k, n: report("privacy-utility sweep", k, n),
            )
            timings["sweep"] = time.perf_counter() - step

    info = DefenseInfo(
        kind="nmid",
        sigma=defense.sigma_,
        sigma_source=sigma_source,
        expose=expose.value,
        keyed=True,
        key_fingerprint=defense.fingerprint(),
        parent_sha256=loaded.sha256,
        exposes=EXPOSES[expose],
    )
    status, verdict_text = _verdict(info, verification, calibration)
    if verification is None:
        warnings.append(
            "not verified: without --members/--nonmembers nothing shows what this sigma protects"
        )

    # Build every artifact in memory, then write them all.
    step = time.perf_counter()
    exports: list[tuple[str, str, bytes, int, float]] = []
    for fmt in config.export:
        module = build_torchscript(hardened)
        data = torchscript_bytes(module, export_metadata(hardened, loaded.sha256))
        check_on = (
            list(ver_obs.encodings[:64]) if obs is not None else [hardened.encode_code("int f();")]
        )
        n_checked, worst = compare_with_wrapper(data, hardened, check_on)
        exports.append((fmt, outputs[f"export-{fmt}"], data, n_checked, worst))
    plot_data = None
    if config.plot:
        from codeaudit.defense.plot import privacy_utility_png

        plot_data = privacy_utility_png(curve, calibration, verification, info)
    timings["export"] = time.perf_counter() - step

    metadata = dict(loaded.metadata)
    metadata["hardened"] = {
        "parent_sha256": loaded.sha256,
        "parent_path": Path(config.model).name,
        "defense": "nmid",
        "sigma": defense.sigma_,
        "sigma_source": sigma_source,
        "expose": expose.value,
        "calibration": None
        if calibration is None
        else {
            "target_auc": calibration.target_auc,
            "effective_target": calibration.effective_target,
            "label_only_floor": calibration.label_only_floor,
            "reached": calibration.reached,
        },
        "verification": None
        if verification is None
        else {
            "best_score_auc_after": verification.best_score_auc_after,
            "label_only_floor": verification.label_only_floor,
            "target_met": verification.target_met,
        },
    }
    written = save_hardened(hardened, config.output, metadata=metadata, force=config.force)
    artifacts = [
        *loaded.artifacts(),
        Artifact("output", str(written), sha256_file(written)),
    ]
    if members is not None and nonmembers is not None:
        artifacts += [
            Artifact("members", str(config.members), members.sha256),
            Artifact("nonmembers", str(config.nonmembers), nonmembers.sha256),
        ]
    export_infos = []
    for fmt, path, data, n_checked, worst in exports:
        write_bytes(path, data, force=config.force)
        artifacts.append(Artifact(f"export-{fmt}", path, sha256_bytes(data)))
        export_infos.append(ExportInfo(fmt, path, sha256_bytes(data), n_checked, worst))
    if plot_data is not None and config.plot:
        write_bytes(config.plot, plot_data, force=config.force)
    timings["total"] = time.perf_counter() - started

    result = HardenResult(
        header=Header(command="harden", seed=config.seed, artifacts=tuple(artifacts)),
        checkpoint=loaded.info(),
        defense=info,
        status=status,
        verdict=verdict_text,
        calibration=calibration,
        sweep=curve,
        verification=verification,
        exports=tuple(export_infos),
        settings={
            "target_auc": config.target_auc,
            "floor_margin": config.floor_margin,
            "calibration_share": config.calibration_share if calibration else None,
            "queries": config.queries,
            "rewrites": config.rewrites,
            "boundary_samples": config.boundary_samples,
            "boundary_rewrites": config.boundary_rewrites,
            "attack_models": list(config.classifiers),
            "folds": config.folds,
            "bootstrap": config.n_boot,
            "device": device,
        },
        timings={k: round(v, 3) for k, v in timings.items()},
        plot=config.plot if plot_data is not None else None,
        warnings=tuple(warnings),
    )
    findings = evaluate(rules, result, command="harden", target=config.output)
    return hardened, dataclasses.replace(result, findings=findings)
