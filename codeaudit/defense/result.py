"""The result of ``codeaudit harden``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.membership.result import AttackRow
from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class DefenseInfo:
    kind: str  # "nmid"
    sigma: float
    sigma_source: str  # "given" | "calibrated" | "unused (labels only)"
    expose: str  # "label" | "top1" | "probs"
    keyed: bool
    key_fingerprint: str  # sha256 of the key, first 16 hex digits (never the key itself)
    parent_sha256: str
    exposes: tuple[str, ...]  # what a caller observes
    noise: str = "gaussian"  # "gaussian" (noise on the logits) | "banded" (confidence bands)
    bands: int | None = None  # banded: the number of confidence bands


@dataclass(frozen=True)
class CurvePoint:
    """The strongest score attacks and the utility at one noise scale."""

    sigma: float
    best_auc: float | None  # one query per function (None: no scores released)
    best_attack: str | None
    best_tpr_at_1: float | None  # TPR at 1% FPR of that attack (None: too few non-members)
    rewrite_auc: float | None  # answers averaged over each function's rewrites
    rewrite_attack: str | None
    roc_auc_members: float | None  # ROC AUC of the released vulnerability score
    roc_auc_nonmembers: float | None
    bands: int | None = None  # banded mechanism: the number of bands (sigma is then 0)

    @property
    def setting(self) -> str:
        return f"{self.bands} bands" if self.bands is not None else f"sigma {self.sigma:g}"


@dataclass(frozen=True)
class Calibration:
    """How sigma was chosen: on the calibration split only."""

    target_auc: float  # what was asked (--target-auc)
    floor_margin: float  # tolerance above the label-only floors
    slack: float  # sigma was chosen to meet each target by this much on the calibration split
    label_only_floor: float  # 0.5 + gap / 2 on the calibration split
    labels_only_auc: float  # the score attacks fed labels only, one query per function
    rewrite_labels_only_auc: float | None  # ... and averaged over rewrites
    effective_target: float  # max(target_auc, max(floor, labels_only_auc) + floor_margin)
    rewrite_target: float | None  # max(target_auc, rewrite_labels_only_auc + floor_margin)
    sigma: float
    reached: bool  # some sigma met both targets
    auc_at_sigma: float | None
    rewrite_auc_at_sigma: float | None
    n_members: int
    n_nonmembers: int
    points: tuple[CurvePoint, ...]  # every sigma tried, in increasing order (bands: decreasing)
    bands: int | None = None  # --noise banded: the number of bands chosen (sigma is then 0)
    edges: tuple[float, ...] = ()  # ... and their cuts on |margin| (calibration non-members)


@dataclass(frozen=True)
class FrontierPoint:
    """One way to release the model's answers: how much the strongest attack that sees them
    reaches, and how well the released score still ranks unseen functions."""

    name: str  # "undefended", "label only", "sigma 0.5", "8 bands"
    kind: str  # "undefended" | "label" | "gaussian" | "banded"
    sigma: float | None  # gaussian: the noise scale
    bands: int | None  # banded: the number of bands
    attack_auc: float | None  # strongest score attack, one query (labels alone for "label")
    rewrite_auc: float | None  # ... on answers averaged over rewrites
    roc_auc_nonmembers: float | None  # ROC AUC of the released score on non-members
    meets: bool  # attack within the target (and rewrite averaging within its own)
    pareto: bool  # no other point is at least as private and as useful, and better in one


@dataclass(frozen=True)
class Frontier:
    """The privacy-utility frontier of one target, and the operating point chosen on it."""

    data: str  # which split the points were measured on
    noise: str  # the mechanism whose settings were tried: "gaussian" | "banded"
    target: float  # an operating point must keep the strongest score attack at or below this
    rewrite_target: float | None  # ... and rewrite averaging at or below this
    labels_only_auc: float  # what the same attacks reach from labels alone
    label_roc_auc_nonmembers: float | None  # the label-only release's ranking utility
    undefended_roc_auc_nonmembers: float | None
    points: tuple[FrontierPoint, ...]  # undefended, every setting tried, label only
    chosen: str  # the name of the chosen operating point
    recommend_label: bool  # no noised point beats the label-only release
    reason: str  # one line: why this operating point
    shipped: str  # the setting written to the hardened model ("sigma 0.39", "8 bands")
    slack: float = 0.0  # points from the calibration split must meet target - slack
    #: the shipped setting checked against the label-only release on the verification split
    #: (None: not verified): its targets met and its score ranking unseen functions better
    verified_beats_label: bool | None = None
    verified_roc_auc_nonmembers: float | None = None  # the shipped score, verification split
    verified_label_roc_auc_nonmembers: float | None = None  # the label alone, same data


@dataclass(frozen=True)
class ComparisonRow:
    """One attack (group) before and after hardening, on the verification data."""

    group: str  # "feature set" | "threshold" | "label-only" | "adaptive"
    name: str  # feature set ("loss+confidence") or attack ("threshold-loss")
    before_auc: float | None  # None: does not apply / not exposed
    before_tpr_at_1: float | None
    after_auc: float | None
    after_tpr_at_1: float | None
    after_attack: str | None  # the attack strongest on this row after hardening
    note: str = ""


@dataclass(frozen=True)
class UtilityRow:
    split: str  # "members" | "non-members"
    n: int
    accuracy_before: float
    accuracy_after: float
    f1_before: float
    f1_after: float
    roc_auc_before: float | None
    roc_auc_after: float | None


@dataclass(frozen=True)
class Verification:
    """The full membership suite on the original and the hardened model (held-out data)."""

    data: str  # "the verification split ..." | "all the given data"
    n_members: int
    n_nonmembers: int
    label_only_floor: float  # 0.5 + (members accuracy - non-members accuracy) / 2
    labels_only_auc: float  # the score attacks fed labels only (>= the floor: class-aware)
    rewrite_labels_only_auc: float | None  # the same, labels averaged over rewrites
    target: float  # max(target AUC, max(floor, labels_only_auc) + margin)
    rewrite_target: float | None  # max(target AUC, rewrite_labels_only_auc + margin)
    best_auc_before: float
    best_attack_before: str
    best_score_auc_after: float | None  # one query or repeated queries (None: labels only)
    best_score_attack_after: str | None
    excess_over_floor: float | None  # best_score_auc_after - max(floor, labels_only_auc)
    rewrite_averaging_auc: float | None  # score attacks on answers averaged over rewrites
    rewrite_excess: float | None  # rewrite_averaging_auc - rewrite_labels_only_auc
    target_met: bool  # both targets
    label_only_auc: float  # the strongest label-only attack of all (boundary included)
    single_query_auc: float | None
    repeat_averaging_auc: float | None  # the same attacks on the mean of --queries answers
    averaging_gain: float | None  # repeat_averaging_auc - single_query_auc (0 when keyed)
    rewrite_averaging_gain: float | None  # rewrite_averaging_auc - single_query_auc
    labels_changed: int  # predictions that differ from the original model's (always 0)
    roc_auc_drop: float | None  # non-members: before - after
    rows: tuple[ComparisonRow, ...]
    utility: tuple[UtilityRow, ...]
    attacks_before: tuple[AttackRow, ...]
    attacks_after: tuple[AttackRow, ...]
    target_auc: float = 0.6  # what was asked (--target-auc) before any raise
    floor_margin: float = 0.02  # --floor-margin

    def target_lines(self) -> tuple[str, ...]:
        """Each target, why it has its value, and whether it was met: one line each."""
        lines = [
            _target_line(
                "score attacks",
                self.best_score_auc_after,
                self.target,
                self.target_auc,
                f"labels alone reach {self.labels_only_auc:.3f}",
                self.floor_margin,
            )
        ]
        if self.rewrite_target is not None and self.rewrite_labels_only_auc is not None:
            lines.append(
                _target_line(
                    "answers averaged over rewrites",
                    self.rewrite_averaging_auc,
                    self.rewrite_target,
                    self.target_auc,
                    f"the labels of rewritten functions reach {self.rewrite_labels_only_auc:.3f}",
                    self.floor_margin,
                )
            )
        if self.label_only_auc > self.target + 1e-12:
            lines.append(
                f"Label-only attacks reach {self.label_only_auc:.3f}, above the target: they do "
                "not count against NMID, because no output defence can change what predicted "
                "labels give away; only retraining lowers them."
            )
        return tuple(lines)


def _target_line(
    what: str, reached: float | None, target: float, asked: float, why: str, margin: float
) -> str:
    if target > asked + 1e-12:
        reason = f"raised from --target-auc {asked:g} because {why} (+ margin {margin:g})"
    else:
        reason = f"--target-auc {asked:g}"
    if reached is None:
        return f"Target for {what}: AUC at most {target:.3f} ({reason}); not measured."
    verdict = "met" if reached <= target + 1e-12 else "NOT met"
    return (
        f"Target for {what}: AUC at most {target:.3f} ({reason}); reached {reached:.3f}: {verdict}."
    )


@dataclass(frozen=True)
class ExportInfo:
    format: str  # the --export choice: "torch.export" or "torchscript"
    path: str
    sha256: str
    verified_samples: int  # compared with the codeaudit wrapper before writing
    max_abs_diff: float


@dataclass(frozen=True)
class HardenResult:
    header: Header
    checkpoint: CheckpointInfo
    defense: DefenseInfo
    status: str  # "holds" | "partial" | "unverified"
    verdict: str
    calibration: Calibration | None
    sweep: tuple[CurvePoint, ...]
    verification: Verification | None
    exports: tuple[ExportInfo, ...]
    settings: dict[str, object]
    timings: dict[str, float]
    plot: str | None = None
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    frontier: Frontier | None = None

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.defense.sections import harden_sections

        return harden_sections(self, figures)
