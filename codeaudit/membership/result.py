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
class RiskMethod:
    """One per-member risk score of ``--risk-scores`` (:mod:`codeaudit.membership.risk`): how it
    is computed, and how many members it puts at high risk by its stated criterion."""

    name: str  # "attack" | "lira" | "shapr": its key in the file's lines
    method: str  # how the score is computed, in one sentence
    available: bool
    detail: str  # which attack, which k, or why the score is missing
    high_risk: int | None  # members at high risk (None: not available)
    high_rule: str  # what "high risk" means for this score


@dataclass(frozen=True)
class RiskCorrelation:
    """Spearman rank correlation of two per-member scores over the members (None: a score is
    constant or missing)."""

    a: str
    b: str
    spearman: float | None


@dataclass(frozen=True)
class RiskSummary:
    """What ``--risk-scores`` wrote: the methods, how often they agree and whether the members
    SHAPr ranks riskiest are the ones the strongest attack catches."""

    path: str
    n_members: int
    n_utility: int  # the non-members SHAPr's utility is measured on
    shapr_k: int
    shapr_utility: float | None  # k-NN accuracy on the utility set: the sum of SHAPr values
    methods: tuple[RiskMethod, ...]
    correlations: tuple[RiskCorrelation, ...]
    # Share of members the strongest attack catches at 1% FPR among the top and the bottom
    # tenth of members by SHAPr (None: a score is missing).
    caught_top_shapr: float | None = None
    caught_bottom_shapr: float | None = None


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
class InputCheck:
    """``--members`` and ``--nonmembers`` checked against the training/validation split the
    checkpoint records (:mod:`codeaudit.membership.inputs`). Counts are None where the record
    cannot say."""

    recorded: str  # "full" (training and validation) | "validation" (only) | "none"
    members_given: int
    nonmembers_given: int
    members_held_out: int | None  # members that were held out for validation
    members_unseen: int | None  # members that were neither trained nor validated on
    nonmembers_trained: int | None  # non-members the model trained on
    dropped_members: int  # left out of the attacks (held out; unseen members are kept)
    dropped_nonmembers: int  # left out of the attacks (trained on)


@dataclass(frozen=True)
class BlindBaseline:
    """The model-free ("blind") baseline: how well the inputs alone, without a single query to
    the model, tell members from non-members (:mod:`codeaudit.membership.blind`). Near 0.5 when
    both come from one distribution; high when they do not, and then attack AUCs measure the
    data shift, not memorisation (Das, Zhang and Tramer 2024)."""

    row: AttackRow
    shift: bool  # the sets differ in distribution: the attack figures are not a measurement
    threshold: float  # blind AUC at or above which the audit is not valid
    margin: float  # ... or within this of the best attack (with its CI above 0.5)


@dataclass(frozen=True)
class MembershipResult:
    header: Header
    checkpoint: CheckpointInfo
    verdict: str
    risk: str  # "high" | "medium" | "low" | "none" | "not-measurable" (distribution shift)
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
    inputs: InputCheck | None = None
    blind_baseline: BlindBaseline | None = None
    distribution_shift: bool = False  # = blind_baseline.shift (what rule CA-M006 reads)
    risk_scores: RiskSummary | None = None  # --risk-scores
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.membership.sections import membership_sections

        return membership_sections(self, figures)
