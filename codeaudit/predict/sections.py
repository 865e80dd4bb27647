"""How a :class:`~codeaudit.predict.result.PredictResult` reads in a report (the neutral
:class:`~codeaudit.report.document.Section` s every format draws)."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Block, Section, Table, checkpoint_fact, fmt, pct


def predict_sections(result: Any, figures: bool) -> list[Section]:
    summary = (
        f"The model labelled {result.n} functions, {result.predicted_vulnerable} of them as "
        "vulnerable"
    )
    blocks: list[Block] = []
    m = result.metrics
    if m is not None:
        summary += f"; it was right on {pct(m.accuracy)} of them (the data carry labels)."
        blocks.append(
            Table(
                ("accuracy", "precision", "recall", "F1", "ROC AUC", "TP", "FP", "TN", "FN"),
                (
                    (
                        fmt(m.accuracy),
                        fmt(m.precision),
                        fmt(m.recall),
                        fmt(m.f1),
                        fmt(m.roc_auc),
                        str(m.tp),
                        str(m.fp),
                        str(m.tn),
                        str(m.fn),
                    ),
                ),
                title="Metrics",
                numeric=(True,) * 9,
            )
        )
    else:
        summary += " (the data carry no labels, so accuracy is unknown)."
    shown = result.predictions[:20]
    if shown:
        blocks.append(
            Table(
                ("id", "label", "predicted", "p(vulnerable)"),
                tuple(
                    (p.id, fmt(p.label), str(p.predicted_label), fmt(p.p_vulnerable)) for p in shown
                ),
                title=f"First {len(shown)} of {result.n} predictions",
                numeric=(False, True, True, True),
                note="Every prediction is in the JSON report.",
            )
        )
    facts = (
        ("functions", str(result.n)),
        ("predicted vulnerable", str(result.predicted_vulnerable)),
        ("truncated", str(result.truncated)),
        ("skipped records", str(result.skipped)),
        ("checkpoint", checkpoint_fact(result.checkpoint)),
    )
    blocks.insert(0, Table(("property", "value"), facts, title="Run"))
    return [Section("Predictions", summary=summary, blocks=tuple(blocks))]
