"""``codeaudit harden`` as a check: wrap the loaded model with NMID, choose sigma, verify it,
and return what ships as bytes.

Order of work: every setting and output path is checked before anything loads; the model is
refused if it is already hardened; the key is drawn; with ``--members/--nonmembers`` the original
model is observed once (outputs, token ids, rewrites), split into calibration and verification
halves, sigma is chosen on the first (``--sigma auto``) and the membership suite runs on the
original and the hardened model on the second (:mod:`codeaudit.defense.verify`); the exports are
built and checked against the wrapper. The runner's caller writes the files, all or none.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from codeaudit.check import Check, Context, DataInput, Inputs, Outcome, Output, OutputPath
from codeaudit.config import HardenConfig
from codeaudit.data.samples import Dataset
from codeaudit.defense.calibrate import (
    BAND_GRID,
    DEFAULT_GRID,
    BandCalibrator,
    CurveEvaluator,
    SigmaCalibrator,
    calibration_split,
    sweep,
    sweep_bands,
)
from codeaudit.defense.evaluate import (
    Observations,
    band_edges,
    label_margins,
    observe,
    score_roc_auc,
)
from codeaudit.defense.frontier import build_frontier, verify_frontier
from codeaudit.defense.result import (
    Calibration,
    CurvePoint,
    DefenseInfo,
    ExportInfo,
    Frontier,
    HardenResult,
)
from codeaudit.defense.verify import verdict, verify
from codeaudit.errors import DataError, HardenError, UsageError
from codeaudit.models.nmid import EXPOSES, NMID, Exposure, parse_exposure
from codeaudit.report.model import Header

MIN_SAMPLES = 10


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def output_paths(config: HardenConfig) -> list[OutputPath]:
    """Every file harden will write: the hardened checkpoint, the exports, the plot."""
    from codeaudit.defense.export import default_export_path

    outputs = [OutputPath("output", config.output, "model")]
    for fmt in config.export:
        path = config.export_output or default_export_path(config.output, fmt)
        outputs.append(OutputPath(f"export-{fmt}", path, "model"))
    if config.plot:
        outputs.append(OutputPath("curve-plot", config.plot, "plot"))
    return outputs


def check_outputs(config: HardenConfig) -> None:
    """No output named twice, none replacing the input checkpoint."""
    seen: dict[str, str] = {}
    for output in output_paths(config):
        path, role = output.path, output.role
        if os.path.exists(config.model) and _same_file(path, config.model):
            raise UsageError(f"{path}: the {role} would replace the input model; name another file")
        key = os.path.abspath(path)
        if key in seen:
            raise UsageError(f"{path}: named as both {seen[key]} and {role}")
        seen[key] = role


def check_data(members: Dataset, nonmembers: Dataset, folds: int) -> None:
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


def check_split(obs: Observations, index: np.ndarray, what: str, folds: int) -> None:
    member_count = int(obs.membership[index].sum())
    nonmember_count = len(index) - member_count
    need = max(folds, MIN_SAMPLES // 2)
    if min(member_count, nonmember_count) < need:
        raise DataError(
            f"the {what} split holds {member_count} members and {nonmember_count} non-members; "
            f"--sigma auto needs at least {need} of each on both halves (give more data, or a "
            "fixed --sigma to verify on all of it)"
        )


class HardenCheck(Check):
    command = "harden"

    def validate(self, config: Any) -> None:
        check_outputs(config)  # every value was checked when the config was built

    def data_inputs(self, config: Any) -> list[DataInput]:
        if not (config.members and config.nonmembers):
            return []
        return [DataInput("members", config.members), DataInput("nonmembers", config.nonmembers)]

    def output_paths(self, config: Any) -> list[OutputPath]:
        return output_paths(config)

    def target(self, config: Any) -> str:
        return str(config.output)

    def check_inputs(self, inputs: Inputs, config: Any) -> None:
        refuse_hardened(inputs.model, config)
        refuse_unexportable(inputs.model, config)

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        loaded = inputs.model
        expose = parse_exposure(config.expose)
        warnings: list[str] = []
        warnings += export_warnings(config)
        if loaded.trusted_pickle:
            warnings.append(
                f"{config.model}: loaded through full unpickling (--trust-checkpoint); the "
                "hardened checkpoint is written weights-only"
            )
        if config.noise == "banded":  # one band until the bands are cut on the data
            defense = NMID(0.0, expose.value, key=config.key, edges=()).fit(loaded.model)
        else:
            defense = NMID(config.sigma or 0.0, expose.value, key=config.key).fit(loaded.model)
        if expose is Exposure.LABEL and config.sigma:
            warnings.append("--expose label releases no scores: the noise has no effect")
        plan = Plan(defense=defense)
        if config.members and config.nonmembers:
            self._observe(plan, inputs, config, context, warnings)
        hardened = plan.defense.transform(loaded.model, parent_sha256=loaded.sha256)
        if plan.obs is not None:
            self._verify(plan, hardened, loaded.model, config, context)
        info = defense_info(plan.defense, config, loaded.sha256)
        frontier = frontier_of(plan, info, config)
        status, text = verdict(info, plan.verification, plan.calibration)
        if frontier is not None:
            text += f" Frontier: {frontier.reason}"
        if plan.verification is None:
            warnings.append(
                "not verified: without --members/--nonmembers nothing shows what this sigma "
                "protects"
            )
        with context.stage("export"):
            outputs, exports = self._files(plan, hardened, loaded, config, info)
        result = HardenResult(
            header=Header(command=self.command),
            checkpoint=loaded.info(),
            defense=info,
            status=status,
            verdict=text,
            calibration=plan.calibration,
            sweep=plan.curve,
            verification=plan.verification,
            exports=exports,
            settings=settings_of(config, plan, context),
            timings={},
            plot=config.plot if config.plot else None,
            warnings=tuple(warnings),
            frontier=frontier,
        )
        return Outcome(result, outputs, model=hardened)

    def _observe(
        self, plan: Plan, inputs: Inputs, config: Any, context: Context, warnings: list[str]
    ) -> None:
        """Observe the original model once; with --sigma auto, choose sigma on half of it."""
        from codeaudit.membership.inputs import verify_inputs
        from codeaudit.membership.judge import data_warnings

        verified = verify_inputs(  # left out: inputs on the wrong side of the recorded split
            inputs.dataset("members"),
            inputs.dataset("nonmembers"),
            str(config.model),
            inputs.model.metadata,
        )
        members, nonmembers = verified.members, verified.nonmembers
        check_data(members, nonmembers, config.folds)
        warnings += [*verified.warnings, *data_warnings(members, nonmembers)]
        base = inputs.model.model
        with context.stage("observe"):
            obs = observe(
                base,
                members,
                nonmembers,
                rewrites=config.rewrites,
                seed=config.seed,
                batch_size=config.batch_size,
                progress=context.progress,
            ).with_noise(plan.defense, base)
        from codeaudit.lang.rewrite import skipped_warning

        skip_note = skipped_warning(
            obs.rewrite_skipped,
            "rewrite averaging and the label-only boundary attack",
            "they get no rewrite",
        )
        if skip_note is not None and (config.rewrites or config.boundary_samples):
            warnings.append(skip_note)
        if config.rewrites:
            without = len(obs) - len(np.unique(obs.variant_owner))
            if without:
                warnings.append(
                    f"{without} of {len(obs)} functions offer no site for a semantics-preserving "
                    "rewrite; rewrite averaging uses their single answer"
                )
        plan.obs, plan.ver_obs, plan.data_label = obs, obs, "all the given data"
        if config.noise == "banded" and config.bands is not None:  # cut on every non-member
            cuts = CurveEvaluator.margins_of(obs, members=False)
            plan.defense = plan.defense.with_edges(band_edges(cuts, config.bands))
            plan.edges_for = lambda bands: band_edges(cuts, bands)
        auto = config.bands is None if config.noise == "banded" else config.sigma is None
        if auto and config.expose != Exposure.LABEL.value:
            with context.stage("calibration"):
                calibrate(plan, config, context, warnings)

    def _verify(self, plan: Plan, hardened: Any, base: Any, config: Any, context: Context) -> None:
        assert plan.ver_obs is not None
        with context.stage("verification"):
            plan.verification = verify(
                base,
                hardened,
                plan.defense,
                plan.ver_obs,
                config,
                data_label=plan.data_label,
                progress=context.progress,
            )
        if plan.verification.labels_changed:  # never ship a model whose predictions changed
            raise RuntimeError(
                f"NMID changed {plan.verification.labels_changed} predictions; nothing was written"
            )
        if (config.sweep or config.plot) and plan.defense.expose_ is not Exposure.LABEL:
            with context.stage("sweep"):
                evaluator = CurveEvaluator(
                    plan.ver_obs,
                    plan.defense.expose_.value,
                    classifiers=config.attack_classifiers,
                    folds=config.folds,
                    seed=config.seed,
                )
                reporter = context.reporter("privacy-utility sweep")
                if plan.defense.mechanism == "banded":
                    edges_for = plan.edges_for or evaluator.band_edges
                    plan.curve = sweep_bands(evaluator, BAND_GRID, edges_for, progress=reporter)
                    plan.undefended = evaluator.point(0.0)
                else:
                    plan.curve = sweep(evaluator, DEFAULT_GRID, progress=reporter)
                    plan.undefended = None
                plan.frontier_on = (evaluator, plan.curve, plan.data_label)

    def _files(
        self, plan: Plan, hardened: Any, loaded: Any, config: Any, info: DefenseInfo
    ) -> tuple[tuple[Output, ...], tuple[ExportInfo, ...]]:
        """The hardened checkpoint, the exports (each checked against the wrapper) and the plot,
        as bytes."""
        from codeaudit.defense.export import (
            checkpoint_bytes,
            compare_with_wrapper,
            export_metadata,
        )
        from codeaudit.defense.exporters import exporter
        from codeaudit.io import sha256_bytes

        paths = {o.role: o.path for o in output_paths(config)}
        metadata = hardened_metadata(plan, loaded, config)
        outputs = [Output("output", config.output, checkpoint_bytes(hardened, metadata))]
        exports = []
        check_on = (
            list(plan.ver_obs.encodings[:64])
            if plan.ver_obs is not None
            else [hardened.encode_code("int f();")]
        )
        for fmt in config.export:
            chosen = exporter(fmt)
            data = chosen.to_bytes(hardened, export_metadata(hardened, loaded.sha256, fmt))
            n_checked, worst = compare_with_wrapper(data, hardened, check_on, load=chosen.load)
            path = paths[f"export-{fmt}"]
            outputs.append(Output(f"export-{fmt}", path, data))
            exports.append(ExportInfo(fmt, path, sha256_bytes(data), n_checked, worst))
        if config.plot:
            from codeaudit.defense.plot import privacy_utility_png

            png = privacy_utility_png(plan.curve, plan.calibration, plan.verification, info)
            outputs.append(Output("curve-plot", config.plot, png))
        return tuple(outputs), tuple(exports)


@dataclasses.dataclass
class Plan:
    """What harden works out as it goes: the defence (its sigma once calibrated), the
    observations and the verification split, and what was measured on them."""

    defense: NMID
    obs: Observations | None = None
    ver_obs: Observations | None = None
    data_label: str = ""
    calibration: Calibration | None = None
    verification: Any = None
    curve: tuple = ()
    #: where bands are cut (the calibration split's non-members, else all of them)
    edges_for: Any = None
    #: the evaluator, points and data the frontier is drawn from (the sweep's if any, else the
    #: calibration's), and the undefended point when the points hold none (banded)
    frontier_on: Any = None
    undefended: CurvePoint | None = None


def refuse_hardened(loaded: Any, config: Any) -> None:
    from codeaudit.models.nmid import HardenedModel

    if loaded.defense is not None or isinstance(loaded.model, HardenedModel):
        d = loaded.defense or {}
        raise HardenError(
            f"{config.model}: already hardened (NMID, expose {d.get('expose')}, sigma "
            f"{d.get('sigma')}); harden the original model (sha256 "
            f"{str(d.get('parent_sha256'))[:16]}) instead"
        )


def refuse_unexportable(loaded: Any, config: Any) -> None:
    """Refuse, before any work, an export format that cannot take this model."""
    from codeaudit.defense.exporters import exporter

    for fmt in config.export:
        reason = exporter(fmt).refusal(loaded.model)
        if reason:
            raise HardenError(f"{config.model}: --export {fmt}: {reason}")


def export_warnings(config: Any) -> list[str]:
    """What the chosen export formats need said (TorchScript's deprecation)."""
    from codeaudit.defense.exporters import exporter

    return [w for w in (exporter(fmt).deprecation for fmt in config.export) if w]


def calibrate(plan: Plan, config: Any, context: Context, warnings: list[str]) -> None:
    """Choose sigma (or the number of bands) on the calibration half; the other half verifies
    it."""
    obs = plan.obs
    assert obs is not None
    cal_index, ver_index = calibration_split(
        obs.samples, obs.membership, config.calibration_share, config.seed
    )
    check_split(obs, cal_index, "calibration", config.folds)
    check_split(obs, ver_index, "verification", config.folds)
    evaluator = CurveEvaluator(
        obs.subset(cal_index),
        plan.defense.expose_.value,
        classifiers=config.attack_classifiers,
        folds=config.folds,
        seed=config.seed,
    )
    banded = plan.defense.mechanism == "banded"
    bands: int | None = None
    edges: tuple[float, ...] = ()
    calibrator: SigmaCalibrator | BandCalibrator
    if banded:
        calibrator = BandCalibrator(
            config.target_auc, floor_margin=config.floor_margin, slack=config.calibration_slack
        )
        calibrator.fit(evaluator, progress=context.reporter("calibrating the bands"))
        sigma, auc, rewrite_auc = 0.0, calibrator.auc_at_bands_, calibrator.rewrite_auc_at_bands_
        plan.undefended = evaluator.point(0.0)
        plan.edges_for = evaluator.band_edges
        bands, edges = calibrator.bands_, calibrator.edges_
        # the operating point is chosen on the frontier: the most useful number of bands
        # within the targets (with the slack) that beats the label alone
        provisional = build_frontier(
            calibrator.points_,
            undefended=plan.undefended,
            labels_only_auc=evaluator.labels_only_auc,
            rewrite_labels_only_auc=evaluator.rewrite_labels_only_auc,
            label_roc_auc_nonmembers=evaluator.label_roc_auc_nonmembers,
            target=calibrator.effective_target_,
            rewrite_target=calibrator.rewrite_target_,
            data="the calibration split",
            noise="banded",
            shipped="",
            slack=config.calibration_slack,
            min_gain=config.frontier_gain,
        )
        on_frontier = next(
            (p for p in provisional.points if p.name == provisional.chosen and p.bands), None
        )
        if on_frontier is not None and on_frontier.bands in calibrator.edges_by_bands_:
            bands = on_frontier.bands
            edges = calibrator.edges_by_bands_[bands]
            auc, rewrite_auc = on_frontier.attack_auc, on_frontier.rewrite_auc
    else:
        calibrator = SigmaCalibrator(
            config.target_auc, floor_margin=config.floor_margin, slack=config.calibration_slack
        )
        calibrator.fit(evaluator, progress=context.reporter("calibrating sigma"))
        sigma, auc, rewrite_auc = (
            calibrator.sigma_,
            calibrator.auc_at_sigma_,
            calibrator.rewrite_auc_at_sigma_,
        )
    plan.calibration = Calibration(
        target_auc=config.target_auc,
        floor_margin=config.floor_margin,
        slack=calibrator.slack,
        label_only_floor=calibrator.floor_,
        labels_only_auc=calibrator.labels_only_auc_,
        rewrite_labels_only_auc=calibrator.rewrite_labels_only_auc_,
        effective_target=calibrator.effective_target_,
        rewrite_target=calibrator.rewrite_target_,
        sigma=sigma,
        reached=calibrator.reached_,
        auc_at_sigma=auc,
        rewrite_auc_at_sigma=rewrite_auc,
        n_members=int(evaluator.obs.membership.sum()),
        n_nonmembers=int(len(evaluator.obs) - evaluator.obs.membership.sum()),
        points=calibrator.points_,
        bands=bands if banded else None,
        edges=edges if banded else (),
    )
    plan.frontier_on = (evaluator, calibrator.points_, "the calibration split")
    if calibrator.labels_only_auc_ + config.floor_margin > config.target_auc:
        warnings.append(
            f"labels alone give away AUC {calibrator.labels_only_auc_:.3f} on the "
            f"calibration split (correctness floor {calibrator.floor_:.3f}) and no "
            f"output defence goes below that, so the target was raised from "
            f"{config.target_auc} to that + --floor-margin {config.floor_margin} = "
            f"{calibrator.effective_target_:.3f}"
        )
    if isinstance(calibrator, BandCalibrator):
        if not calibrator.reached_:
            warnings.append(
                "no number of bands met the targets on the calibration split; using the least "
                f"leaky one ({calibrator.bands_})"
            )
        plan.defense = plan.defense.with_edges(edges)
    else:
        if not calibrator.reached_:
            warnings.append(
                f"no sigma up to {max(DEFAULT_GRID):g} met the targets on the calibration "
                f"split; using the least leaky one ({calibrator.sigma_:g})"
            )
        plan.defense = plan.defense.with_sigma(calibrator.sigma_)
    plan.ver_obs = obs.subset(ver_index)
    plan.data_label = "the verification split (disjoint from calibration)"


def shipped_setting(defense: NMID) -> str:
    """The released mechanism's setting, as the frontier names its points."""
    if defense.expose_ is Exposure.LABEL:
        return "label only"
    if defense.bands is not None:
        return f"{defense.bands} bands"
    return f"sigma {defense.sigma_:.4g}"


def frontier_of(plan: Plan, info: DefenseInfo, config: Any) -> Frontier | None:
    """The privacy-utility frontier of what was measured (the sweep on the verification split
    when it ran, else the calibration split's points), and the operating point chosen on it.
    Its target is the calibration's, on the frontier's own data: max(--target-auc, what the
    same attacks reach from labels alone + --floor-margin)."""
    if plan.frontier_on is None:
        return None
    evaluator, points, data = plan.frontier_on
    asked, margin = config.target_auc, config.floor_margin
    rewrite = evaluator.rewrite_labels_only_auc
    chose = plan.calibration is not None and evaluator.obs is not plan.ver_obs
    frontier = build_frontier(
        points,
        undefended=plan.undefended,
        labels_only_auc=evaluator.labels_only_auc,
        rewrite_labels_only_auc=rewrite,
        label_roc_auc_nonmembers=evaluator.label_roc_auc_nonmembers,
        target=max(asked, evaluator.labels_only_auc + margin),
        rewrite_target=None if rewrite is None else max(asked, rewrite + margin),
        data=data,
        noise=info.noise,
        shipped=shipped_setting(plan.defense),
        slack=config.calibration_slack if chose else 0.0,
        min_gain=config.frontier_gain,
    )
    v = plan.verification
    if v is None or v.best_score_auc_after is None or plan.ver_obs is None:
        return frontier
    obs = plan.ver_obs
    held_out = obs.membership == 0
    label_roc = score_roc_auc(
        obs.clean.labels[held_out],
        label_margins(obs.clean.logits)[held_out].astype(np.float64),
    )
    after = next(u for u in v.utility if u.split == "non-members")
    return verify_frontier(
        frontier,
        target_met=v.target_met,
        attack_auc=v.best_score_auc_after,
        target=v.target,
        roc_auc_nonmembers=after.roc_auc_after,
        label_roc_auc_nonmembers=label_roc,
        min_gain=config.frontier_gain,
    )


def defense_info(defense: NMID, config: Any, parent_sha256: str) -> DefenseInfo:
    scores = config.expose != Exposure.LABEL.value
    fixed = config.bands is not None if config.noise == "banded" else config.sigma is not None
    source = "given" if fixed else "calibrated" if scores else "unused (labels only)"
    return DefenseInfo(
        kind="nmid",
        sigma=defense.sigma_,
        sigma_source=source,
        expose=defense.expose_.value,
        keyed=True,
        key_fingerprint=defense.fingerprint(),
        parent_sha256=parent_sha256,
        exposes=EXPOSES[defense.expose_],
        noise=defense.mechanism,
        bands=defense.bands,
    )


def hardened_metadata(plan: Plan, loaded: Any, config: Any) -> dict[str, Any]:
    """The parent's metadata plus how it was hardened and what verification measured."""
    from pathlib import Path

    calibration, verification = plan.calibration, plan.verification
    metadata = dict(loaded.metadata)
    metadata["hardened"] = {
        "parent_sha256": loaded.sha256,
        "parent_path": Path(config.model).name,
        "defense": "nmid",
        "sigma": plan.defense.sigma_,
        "noise": plan.defense.mechanism,
        "bands": plan.defense.bands,
        "sigma_source": defense_info(plan.defense, config, loaded.sha256).sigma_source,
        "expose": plan.defense.expose_.value,
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
    return metadata


def settings_of(config: Any, plan: Plan, context: Context) -> dict[str, object]:
    return {
        "target_auc": config.target_auc,
        "floor_margin": config.floor_margin,
        "noise": config.noise,
        "calibration_share": config.calibration_share if plan.calibration else None,
        "queries": config.queries,
        "rewrites": config.rewrites,
        "boundary_samples": config.boundary_samples,
        "boundary_rewrites": config.boundary_rewrites,
        "attack_models": list(config.attack_classifiers),
        "folds": config.folds,
        "bootstrap": config.n_boot,
        "device": context.device,
    }
