"""The result of ``codeaudit backdoor``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.backdoor.scan_result import TriggerCandidate
from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class VocabInfo:
    tokenizer: str  # "vocab" | "hf"
    languages: tuple[str, ...]
    size_before: int
    size_after: int
    fallback: bool  # nothing passed the filter: the whole vocabulary was searched


@dataclass(frozen=True)
class Shortcut:
    """One label-pure run of identifier pieces in the defender's data."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    text: str  # as code text
    target_support: int  # functions with the target label that contain it
    other_support: int  # functions with the other label(s) that contain it
    flip_rate: float | None = None  # held-out victim samples it flips, inserted at their positions
    flip_rate_renamed: float | None = None  # ... replacing the name there at every occurrence


@dataclass(frozen=True)
class PairResult:
    """Trigger inversion for one (victim label -> target label) pair."""

    victim_label: int
    target_label: int
    victim_name: str
    target_name: str
    trigger_tokens: tuple[str, ...]  # GCG's full trigger
    trigger_ids: tuple[int, ...]
    anchored_tokens: tuple[str, ...]  # after anchoring
    anchored_ids: tuple[int, ...]
    anchored_text: str  # the anchored trigger as code text
    loss: float  # GCG's best loss toward the target (inversion samples)
    anchored_loss: float
    inversion_flip_rate: float  # on the inversion samples
    flip_rate: float  # on held-out victim samples: the verdict's number
    n_inversion: int
    n_heldout: int
    threshold: float
    backdoored: bool
    steps: int
    stop: str  # "steps" | "plateau" | "converged"
    positions_fallback: int  # samples with no name in the window (first code id used)
    seconds: float
    # data shortcuts toward the target set aside from the search (None: --keep-shortcuts)
    shortcuts_excluded: int | None = None
    shortcuts: tuple[Shortcut, ...] = ()  # the strongest, with their own flip rates
    # What the held-out flip rate means once clean reference models are compared (kind):
    # "planted" (flips the suspect at the threshold and every reference below reference_ratio
    # times as much), "adversarial" (flips the references about as much: natural or adversarial,
    # not planted), "none" (below the threshold). Without references: "planted" or "none".
    kind: str = "none"
    # per reference (trained ones first, then --reference-model in order): the share of the same
    # held-out victims, among those that reference classifies correctly, the anchored trigger
    # flips to the target (None: it classifies none correctly), and how many that is
    reference_flip_rates: tuple[float | None, ...] = ()
    reference_n: tuple[int, ...] = ()
    reference_flip_max: float | None = None
    reference_flip_mean: float | None = None
    # the anchored trigger's loss on the suspect alone (inversion samples) and its reference
    # penalty (loss = suspect_loss + weight * penalty; None: no references)
    suspect_loss: float | None = None
    reference_penalty: float | None = None


@dataclass(frozen=True)
class ReferenceModel:
    """One clean reference model the scan compared the suspect with."""

    name: str  # "trained 1" ... or the --reference-model path
    source: str  # "trained" | "given"
    seed: int | None  # trained: its seed
    n_train: int | None  # trained: the trusted functions it trained on
    sha256: str | None = None  # given: the file's


@dataclass(frozen=True)
class RepairMetrics:
    """Clean accuracy and attack success on the evaluation split, before or after repair."""

    accuracy: float
    asr_inverted: float | None  # the inverted trigger, on correctly classified victim samples
    asr_real: float | None  # the manifest's real trigger (None: no manifest)
    # On every victim-label function of the evaluation split (not only those the original model
    # classified correctly): the share sent to the target with no trigger (the clean miss rate:
    # what a trigger that does nothing would show) and with the real trigger (of those that took
    # it; None without a manifest). The repair target compares these two.
    miss_rate: float | None = None
    asr_real_all: float | None = None
    n_victims: int = 0
    n_real_all: int = 0


@dataclass(frozen=True)
class Unlearning:
    """EliBadCode unlearning: fine-tune on clean data with the inverted trigger, true labels."""

    scope: str  # "head" | "full"
    epochs: int
    lr: float
    trigger_share: float
    pair: str  # the "victim->target" pair whose trigger was unlearned
    trigger_text: str
    n_train: int
    n_triggered: int
    n_eval: int
    n_eval_victims: int  # evaluation victim samples the original model classifies correctly
    n_eval_real: int  # ... of them that could carry the real trigger (manifest)
    before: RepairMetrics
    after: RepairMetrics
    accuracy_drop: float  # before - after, in accuracy points (0.01 = one point)
    output: str
    parent_sha256: str
    seconds: float
    # What to try next when the real trigger survives or clean accuracy falls, for this scope
    # (rules CA-B002 and CA-B003 quote them).
    if_trigger_survives: str = ""
    if_accuracy_falls: str = ""
    # how the trigger went into the unlearning set (position | attack | mixed), and the triggered
    # samples by the form each took ("position", "identifier", "postfix", "deadcode")
    insertion: str = "position"
    forms: dict[str, int] = field(default_factory=dict)
    # per attack form, the share of the triggered training victims it flipped before repair (the
    # forms within 10 points of the best are the ones used)
    form_flips: dict[str, float] = field(default_factory=dict)
    # after: real-trigger ASR - clean miss rate, both on every victim-label function of the
    # evaluation split (None without a manifest); the target is <= 0.02
    asr_excess: float | None = None


@dataclass(frozen=True)
class RetrainMetrics:
    """Before or after retraining, on the evaluation split: clean accuracy, and on its
    victim-label functions the share the real trigger sends to the target (``asr_real``, with a
    manifest) beside the share the model sends there with no trigger at all (``miss_rate``)."""

    accuracy: float
    asr_real: float | None
    miss_rate: float | None
    n_victims: int  # victim-label functions of the evaluation split
    n_real: int  # ... of them that took the real trigger


@dataclass(frozen=True)
class Retraining:
    """``--retrain``: the checkpoint's recipe trained again without the flagged samples."""

    n_train: int
    n_removed: int
    n_kept: int
    epochs: int
    arch: str
    seed: int
    before: RetrainMetrics
    after: RetrainMetrics
    accuracy_drop: float  # before - after (0.01 = one point)
    asr_excess: float | None  # after: real-trigger ASR - clean miss rate (None: no manifest)
    seconds: float


@dataclass(frozen=True)
class PieceEvidence:
    """One anchored trigger piece in the training data."""

    piece: str
    support: int  # training samples whose code holds it
    target_count: int  # ... of them with the target label
    purity: float
    excess_purity: float  # (purity - base rate) / (1 - base rate), at least 0
    evidence: float  # -log10 of the one-sided binomial tail
    flagged_share: float  # share of its target-labelled carriers the data scan flagged


@dataclass(frozen=True)
class DataTrigger:
    """A likely trigger of the data scan, tried on the model: inserted into held-out victim
    functions the way the attack would (a variable renamed to the name, the postfix on the
    function's name)."""

    kind: str  # name | suffix
    text: str
    flip_rate: float | None  # share of the triggered victims the model sends to the target
    n: int  # victims that took it
    in_clean_data: int  # --data functions that already hold it (a planted trigger: none)
    confirmed: bool  # flips at least the threshold and --data never holds it


@dataclass(frozen=True)
class DataEvidence:
    """``--train-data``: the data scan, and whether the inverted trigger is the data's."""

    n_samples: int
    target_label: int
    base_rate: float  # share of the training samples with the target label
    evidence_threshold: float  # the data scan's bound (Bonferroni)
    likely_triggers: tuple[TriggerCandidate, ...]  # the data scan's, best first (at most 10)
    n_likely: int
    n_flagged: int
    pieces: tuple[PieceEvidence, ...]  # the anchored trigger's pieces, strongest first
    tied: bool  # a piece is concentrated in flagged, target-labelled samples
    tied_piece: str | None
    tried: tuple[DataTrigger, ...] = ()  # the data scan's likely triggers tried on the model
    planted: bool = False  # tied, or a tried trigger confirmed (rule CA-B010)
    finding: str = ""  # what makes it planted, one sentence (CA-B010's message)


@dataclass(frozen=True)
class RealTrigger:
    """What the manifest says was planted."""

    type: str
    trigger: str | None
    target_label: int
    rate: float
    poisoned: int
    tokens_found: bool | None  # the real trigger's pieces are among the anchored tokens
    asr: float | None  # before any repair: share of held-out victim samples it flips
    n_asr: int  # victim samples that could carry it (correctly classified, not inverted on)
    # the same triggered victims on each reference model (the share predicted the target)
    asr_references: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class BackdoorResult:
    header: Header
    checkpoint: CheckpointInfo
    backdoored: bool
    verdict: str
    max_flip_rate: float
    threshold: float
    threshold_source: str  # "given" | "default"
    best_pair: str  # "1->0"
    best_trigger: str  # anchored trigger text of the best pair
    target_label: int  # of the best pair
    pairs: tuple[PairResult, ...]
    vocab: VocabInfo
    unlearning: Unlearning | None
    real_trigger: RealTrigger | None
    missed_known_backdoor: bool | None  # manifest given, real trigger works, scan says clean
    settings: dict[str, object]
    timings: dict[str, float]
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    # the highest flip rate of a data shortcut (inserted or as the name; None: none measured)
    max_shortcut_flip_rate: float | None = None
    # "planted" | "adversarial" | "none": the strongest kind among the pairs (see PairResult)
    verdict_kind: str = "none"  # with --calibration: also "shortcut" or "fragility"; with
    # --train-data: "unplanted" (a strong trigger the training data does not plant)
    references: tuple[ReferenceModel, ...] = ()
    reference_ratio: float | None = None  # None: no references
    data_evidence: DataEvidence | None = None  # --train-data
    retraining: Retraining | None = None  # --retrain
    # with --calibration: the calibrated verdict (codeaudit.backdoor.calibration); then
    # ``backdoored`` means its category is "planted trigger"
    calibrated: Any = None

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.backdoor.sections import backdoor_sections

        return backdoor_sections(self, figures)


@dataclass(frozen=True)
class PoisonResult:
    """The result of ``codeaudit poison`` (the report)."""

    header: Header
    trigger_type: str
    trigger: str | None
    target_label: int
    victim_label: int
    rate: float
    rate_base: str
    n_samples: int
    n_victim: int
    requested: int
    poisoned: int
    no_place: int
    skipped_invalid: int
    languages: dict[str, int]
    already_triggered: int  # samples whose clean code already holds the trigger text
    poisoned_ids: tuple[str, ...]
    example: tuple[str, str] | None  # (id, poisoned code) of the first poisoned sample
    seconds: float
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.backdoor.sections import poison_sections

        return poison_sections(self, figures)
