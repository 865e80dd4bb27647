"""The result of ``codeaudit poison-scan`` (no torch, no numpy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import Finding, Header


@dataclass(frozen=True)
class TriggerCandidate:
    """One ranked key: a name, a name's last piece (postfix) or a statement shape."""

    kind: str  # name | suffix | statement
    text: str
    gain: float  # aggregated naturalness gain (bits per token, summed over functions)
    top_in: int  # functions where it is among the top-k units by gain
    support: int  # functions that carry it
    label: int  # the label its carriers are concentrated in
    label_count: int
    purity: float  # label_count / support
    excess_purity: float  # (purity - base rate) / (1 - base rate), at least 0
    evidence: float  # -log10 of the one-sided binomial tail of label_count
    score: float  # gain x excess purity
    likely_trigger: bool


@dataclass(frozen=True)
class PoisonScanResult:
    header: Header
    n_samples: int
    n_tokens: int  # tokens (identifier pieces) the naturalness model was trained on
    vocab_size: int
    order: int
    base_rates: dict[int, float]  # label -> share of the samples
    mean_cross_entropy: float  # bits per token, each function left out of the model
    evidence_threshold: float  # -log10 p a likely trigger needs (Bonferroni unless given)
    n_candidates: int  # keys tested (support >= min_support)
    candidates: tuple[TriggerCandidate, ...]  # the top ones, likely triggers first
    likely_triggers: tuple[TriggerCandidate, ...]
    planted_trigger: bool  # some candidate is a likely planted trigger (rule CA-B007)
    n_flagged: int
    flagged_ids: tuple[str, ...]
    output: str | None
    settings: dict[str, object]
    timings: dict[str, float]
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.backdoor.scan_sections import poison_scan_sections

        return poison_scan_sections(self, figures)
