"""How a :class:`~codeaudit.train.result.TrainResult` reads in a report (the neutral
:class:`~codeaudit.report.document.Section` s every format draws)."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Section, Table, fmt, pct


def _split_row(name: str, m: Any) -> tuple[str, ...]:
    return (
        name,
        str(m.n),
        fmt(m.accuracy),
        fmt(m.precision),
        fmt(m.recall),
        fmt(m.f1),
        fmt(m.roc_auc),
        fmt(m.loss),
    )


_METRIC_COLUMNS = ("set", "n", "accuracy", "precision", "recall", "F1", "ROC AUC", "loss")


_METRIC_NUMERIC = (False, *([True] * 7))


def train_sections(result: Any, figures: bool) -> list[Section]:
    held = result.val_metrics
    summary = f"A {result.arch} model was trained on {result.n_train} functions"
    if held is not None:
        summary += (
            f"; it labels {pct(held.accuracy)} of {held.n} held-out validation functions correctly."
        )
    else:
        summary += " (no validation data, so how well it generalises is unknown)."
    privacy = result.privacy
    if privacy is not None:
        summary += (
            f" It was trained with DP-SGD and spent epsilon {privacy.epsilon:.2f} at delta "
            f"{privacy.delta:g}."
        )
    rows = [_split_row("train", result.train_metrics)]
    if held is not None:
        rows.append(_split_row(f"validation ({result.val_source})", held))
    facts = Table(
        ("property", "value"),
        (
            ("architecture", result.arch),
            ("trainable parameters", f"{result.parameters:,}"),
            ("vocabulary", f"{result.vocab_size:,}"),
            ("training / validation functions", f"{result.n_train} / {result.n_val}"),
            ("kept epoch", str(result.kept_epoch)),
            ("skipped records", str(result.skipped)),
            ("seconds", fmt(result.seconds, 1)),
            ("preset", str(result.hyperparameters.get("preset") or "-")),
            *_start_rows(result.hyperparameters),
            ("differential privacy", privacy.describe() if privacy is not None else "none"),
        ),
        title="Model",
    )
    history = Table(
        ("epoch", "train loss", "validation loss", "validation accuracy", "validation F1"),
        tuple(
            (
                str(e.epoch),
                fmt(e.train_loss, 4),
                fmt(e.val_loss, 4),
                fmt(e.val_accuracy),
                fmt(e.val_f1),
            )
            for e in result.history
        ),
        title="Training history",
        numeric=(True,) * 5,
    )
    return [
        Section(
            "Training",
            summary=summary,
            blocks=(
                facts,
                Table(_METRIC_COLUMNS, tuple(rows), title="Metrics", numeric=_METRIC_NUMERIC),
                history,
            ),
        )
    ]


def _start_rows(hyper: dict) -> list[tuple[str, str]]:
    """Rows for --init and --freeze-embeddings, only when used."""
    rows = []
    if hyper.get("init"):
        rows.append(("started from", str(hyper["init"])))
    if hyper.get("freeze_embeddings"):
        rows.append(("input embeddings", "frozen"))
    return rows
