"""The result of ``codeaudit membership``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class AttackRow:
    """One attack on one feature set, measured on held-out data."""

    attack: str
    family: str
    features: str  # e.g. "logits+loss"
    auc: float
    auc_ci: tuple[float, float]
    accuracy: float  # balanced accuracy (members and non-members weigh the same)
    precision: float
    recall: float
    f1: float
    advantage: float
    tpr_at_fpr: dict[str, float | None]  # None: too few non-members to measure
    n_members: int
    n_nonmembers: int
    seconds: float


@dataclass(frozen=True)
class FeatureRow:
    """The strongest trained attack on one feature combination."""

    features: str
    attack: str
    auc: float
    tpr_at_fpr: dict[str, float | None]  # None: too few non-members to measure


@dataclass(frozen=True)
class Utility:
    members_accuracy: float
    members_f1: float
    nonmembers_accuracy: float
    nonmembers_f1: float
    generalization_gap: float  # members accuracy - non-members accuracy
    label_only_floor: float  # 0.5 + gap / 2: the correctness attack's AUC


@dataclass(frozen=True)
class ExposedSample:
    id: str
    score: float
    rank: int


@dataclass(frozen=True)
class RocCurve:
    """The ROC curve of one attack (the strongest of its family), sampled on a log-spaced FPR
    grid from 1/n_nonmembers to 1: enough to draw log-log plots from the report alone."""

    attack: str
    features: str
    auc: float
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    # True: the scores take few values (label-only attacks), so the operating points are joined
    # by straight lines (what an attacker who breaks ties at random reaches, and what the AUC
    # integrates) instead of a step curve that would draw a vertical wall at one point.
    joined: bool = False


@dataclass(frozen=True)
class MembershipResult:
    header: Header
    checkpoint: CheckpointInfo
    verdict: str
    risk: str  # "high" | "medium" | "low" | "none"
    best: AttackRow
    best_tpr: AttackRow  # strongest at TPR @ 1% FPR
    attacks: tuple[AttackRow, ...]
    by_features: tuple[FeatureRow, ...]
    utility: Utility
    n_members: int
    n_nonmembers: int
    unknown_token_rate: dict[str, float]  # members / nonmembers
    tokenizer_channel_auc: float | None  # unknown-token-rate attack AUC (None: not exposed)
    settings: dict[str, object]
    timings: dict[str, float]
    top_risk: tuple[ExposedSample, ...] = ()
    roc_plot: str | None = None
    roc_curves: tuple[RocCurve, ...] = ()
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.membership.sections import membership_sections

        return membership_sections(self, figures)
