"""The result of ``codeaudit harden``."""

from __future__ import annotations

from dataclasses import dataclass, field

from codeaudit.membership.result import AttackRow
from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class DefenseInfo:
    kind: str  # "nmid"
    sigma: float
    sigma_source: str  # "given" | "calibrated"
    expose: str  # "label" | "top1" | "probs"
    keyed: bool
    key_fingerprint: str  # sha256 of the key, first 16 hex digits (never the key itself)
    parent_sha256: str
    exposes: tuple[str, ...]  # what a caller observes


@dataclass(frozen=True)
class CurvePoint:
    """The strongest score attack and the utility at one noise scale."""

    sigma: float
    best_auc: float | None  # None: no attack sees scores (label exposure)
    best_attack: str | None
    best_tpr_at_1: float | None  # TPR at 1% FPR of the attack strongest there (None: too few)
    roc_auc_members: float | None  # ROC AUC of the released vulnerability score
    roc_auc_nonmembers: float | None


@dataclass(frozen=True)
class Calibration:
    """How sigma was chosen: on the calibration split only."""

    target_auc: float  # what was asked (--target-auc)
    floor_margin: float  # tolerance above the label-only floor
    label_only_floor: float  # 0.5 + gap / 2 on the calibration split
    effective_target: float  # max(target_auc, floor + floor_margin)
    sigma: float
    reached: bool  # some sigma met the effective target
    auc_at_sigma: float | None
    n_members: int
    n_nonmembers: int
    points: tuple[CurvePoint, ...]  # every sigma tried, in increasing order


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
    """The full membership suite on the original and the hardened model (held-out split)."""

    data: str  # "verification split" | "all data"
    n_members: int
    n_nonmembers: int
    label_only_floor: float  # 0.5 + (members acc - non-members acc) / 2
    target: float  # max(target AUC, floor + margin): what "holds" is judged against
    best_auc_before: float
    best_attack_before: str
    best_score_auc_after: float | None  # over every attack that sees scores, averaging included
    best_score_attack_after: str | None
    excess_over_floor: float | None  # best_score_auc_after - label_only_floor
    target_met: bool
    label_only_auc: float  # the strongest label-only attack (unchanged by any output noise)
    single_query_auc: float | None  # strongest score attack on one query per sample
    repeat_averaging_auc: float | None  # the same attacks on the mean of --queries answers
    averaging_gain: float | None  # repeat_averaging_auc - single_query_auc (0 when keyed)
    rewrite_averaging_auc: float | None  # the same attacks averaged over rewrites
    rewrite_averaging_gain: float | None
    labels_changed: int  # predictions that differ from the original model's (must be 0)
    roc_auc_drop: float | None  # non-members: before - after
    rows: tuple[ComparisonRow, ...]
    utility: tuple[UtilityRow, ...]
    attacks_before: tuple[AttackRow, ...]
    attacks_after: tuple[AttackRow, ...]


@dataclass(frozen=True)
class ExportInfo:
    format: str  # "torchscript"
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


# the terminal renderer registers itself on import
from codeaudit.defense import render as _render  # noqa: E402, F401
