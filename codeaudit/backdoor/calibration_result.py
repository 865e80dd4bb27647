"""Results of the calibrated verdict: ``codeaudit backdoor-calibrate``'s report, and what
``codeaudit backdoor --calibration`` adds to a scan's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.report.model import CheckpointInfo, Finding, Header


@dataclass(frozen=True)
class HeldoutRates:
    """The calibration's measured rates at its operating point, on held-out shadows (each scored
    by a classifier fitted without it), with Wilson 95% intervals."""

    n_clean: int
    n_poisoned: int
    false_positives: int
    detected: int
    fpr: float
    tpr: float
    fpr_ci: tuple[float, float]
    tpr_ci: tuple[float, float]
    auc: float | None = None


@dataclass(frozen=True)
class CalibratedVerdict:
    """The verdict of a scan judged with a calibration file."""

    # "planted trigger" | "data shortcut" | "adversarial fragility" | "no trigger found"
    category: str
    probability: float  # the classifier's probability that a trigger was planted
    threshold: float  # the operating point: planted at probability >= threshold
    max_fpr: float  # the false-positive rate the operating point was chosen for
    heldout: HeldoutRates
    n_shadows: int  # shadows recorded in the file (counted or not)
    calibration: str  # the file
    sha256: str  # of the file
    fingerprint: str  # the recipe's
    features: dict[str, float]  # this scan's features, by name


@dataclass(frozen=True)
class ShadowRecord:
    """One shadow model of a calibration."""

    index: int
    kind: str  # "clean" | "poisoned"
    seed: int
    trigger_type: str | None
    trigger: str | None
    rate: float | None
    poisoned: int  # training functions that got the trigger
    asr: float | None  # planted trigger's flip rate on held-out victims (poisoned only)
    n_asr: int | None
    counted: bool  # used in the fit (clean, or poisoned with a working trigger)
    score: float | None  # held-out score (classifier fitted without it); None: not counted
    anchored_toward: str  # the anchored trigger toward the target label
    max_flip_rate: float
    seconds: float


@dataclass(frozen=True)
class CalibrationResult:
    """The result of ``codeaudit backdoor-calibrate`` (the report)."""

    header: Header
    checkpoint: CheckpointInfo
    output: str
    fingerprint: str
    arch: str
    scan: dict[str, Any]
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    threshold: float
    max_fpr: float
    heldout: HeldoutRates
    shadows: tuple[ShadowRecord, ...]
    n_train: int
    n_scan: int
    settings: dict[str, object]
    timings: dict[str, float]
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections (:class:`~codeaudit.report.document.Section`)."""
        from codeaudit.backdoor.calibration_sections import calibration_sections

        return calibration_sections(self, figures)
