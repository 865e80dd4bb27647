"""How a calibration and a calibrated verdict read in a report."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Block, Paragraph, Section, Table, fmt, pct

SHADOW_COLUMNS = (
    "shadow",
    "kind",
    "trigger",
    "rate",
    "real ASR",
    "anchored trigger",
    "max flip",
    "held-out score",
    "used",
)


def rates_text(h: Any, threshold: float, max_fpr: float) -> str:
    """The sentence every report using a calibration prints."""
    return (
        f"Calibration measured on held-out shadow models (each scored by a classifier fitted "
        f"without it): false-positive rate {pct(h.fpr)} ({h.false_positives} of {h.n_clean} "
        f"clean shadows; 95% CI {pct(h.fpr_ci[0])}-{pct(h.fpr_ci[1])}), detection rate "
        f"{pct(h.tpr)} ({h.detected} of {h.n_poisoned} shadows with a working planted trigger; "
        f"95% CI {pct(h.tpr_ci[0])}-{pct(h.tpr_ci[1])}), at the operating point probability >= "
        f"{threshold:.3f} (chosen for a false-positive rate <= {pct(max_fpr)})."
    )


def calibrated_block(c: Any) -> list[Block]:
    """The calibrated verdict's blocks in a backdoor report."""
    rows = tuple((name, fmt(float(value))) for name, value in c.features.items())
    return [
        Paragraph(
            f"Calibrated verdict: {c.category} (probability of a planted trigger "
            f"{c.probability:.3f}, operating point {c.threshold:.3f}; calibration "
            f"{c.calibration}, {c.n_shadows} shadow models, sha256 {c.sha256[:16]})."
        ),
        Paragraph(rates_text(c.heldout, c.threshold, c.max_fpr)),
        Table(
            ("feature", "value"),
            rows,
            title="Scan features the calibration judged",
            numeric=(False, True),
        ),
    ]


def calibration_sections(result: Any, figures: bool) -> list[Section]:
    h = result.heldout
    counted = [s for s in result.shadows if s.counted]
    failed = [s for s in result.shadows if s.kind == "poisoned" and not s.counted]
    blocks: list[Block] = [
        Paragraph(rates_text(h, result.threshold, result.max_fpr), emphasis=True),
        Paragraph(
            f"{len(result.shadows)} shadow models of the {result.arch} recipe (fingerprint "
            f"{result.fingerprint[:16]}) trained on {result.n_train} trusted functions and "
            f"scanned with {result.n_scan}; {len(counted)} used in the fit"
            + (
                f", {len(failed)} poisoned shadow(s) left out because their planted trigger did "
                "not work (flips < 50% of held-out victims)"
                if failed
                else ""
            )
            + f". AUC on held-out shadows {fmt(h.auc)}. Written to {result.output}."
        ),
        Table(
            ("feature", "coefficient (standardised)"),
            tuple((n, fmt(c)) for n, c in zip(result.features, result.coefficients, strict=True)),
            title="Logistic regression",
            numeric=(False, True),
        ),
        Table(
            SHADOW_COLUMNS,
            tuple(
                (
                    str(s.index),
                    s.kind,
                    f"{s.trigger_type} {s.trigger!r}" if s.trigger_type else "-",
                    pct(s.rate) if s.rate is not None else "-",
                    pct(s.asr) if s.asr is not None else "-",
                    s.anchored_toward,
                    pct(s.max_flip_rate),
                    fmt(s.score),
                    "yes" if s.counted else "no",
                )
                for s in result.shadows
            ),
            title="Shadow models",
            numeric=(True, False, False, True, True, False, True, True, False),
        ),
    ]
    summary = (
        f"Backdoor calibration: held-out false-positive rate {pct(h.fpr)} "
        f"({h.false_positives}/{h.n_clean}), detection rate {pct(h.tpr)} "
        f"({h.detected}/{h.n_poisoned})."
    )
    return [Section("Backdoor calibration (shadow models)", summary, tuple(blocks))]
