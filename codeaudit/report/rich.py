"""Terminal rendering with rich: a result in, text out (so it can be tested like any string)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

Renderer = Callable[[Any, Console], None]
_RENDERERS: dict[str, Renderer] = {}


def rich_renderer(type_name: str) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        _RENDERERS[type_name] = fn
        return fn

    return register


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _warnings(result: Any, console: Console) -> None:
    for warning in getattr(result, "warnings", ()):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for finding in getattr(result, "findings", ()):
        console.print(
            f"[bold red]{finding.rule_id}[/] [{finding.severity.value}] {finding.message}",
            highlight=False,
        )


@rich_renderer("TrainResult")
def _train(result: Any, console: Console) -> None:
    model = result.header.artifact("model")
    console.print(
        f"[bold]trained[/] {result.arch} ({result.parameters:,} parameters, "
        f"vocabulary {result.vocab_size:,}) on {result.n_train} samples in "
        f"{result.seconds:.1f}s, kept epoch {result.kept_epoch}",
        highlight=False,
    )
    if model is not None:
        console.print(f"model: {model.path}  sha256 {model.sha256[:16]}…", highlight=False)
    table = Table(title=None, show_edge=False)
    for column in ("set", "n", "accuracy", "precision", "recall", "F1", "ROC AUC", "loss"):
        table.add_column(column, justify="right" if column != "set" else "left")
    rows = [("train", result.train_metrics)]
    if result.val_metrics is not None:
        rows.append((f"validation ({result.val_source})", result.val_metrics))
    for name, m in rows:
        table.add_row(
            name,
            str(m.n),
            _fmt(m.accuracy),
            _fmt(m.precision),
            _fmt(m.recall),
            _fmt(m.f1),
            _fmt(m.roc_auc),
            _fmt(m.loss),
        )
    console.print(table)
    _warnings(result, console)


@rich_renderer("PredictResult")
def _predict(result: Any, console: Console) -> None:
    console.print(
        f"[bold]{result.n}[/] samples, [bold]{result.predicted_vulnerable}[/] predicted vulnerable",
        highlight=False,
    )
    if result.metrics is not None:
        m = result.metrics
        table = Table(show_edge=False)
        for column in ("accuracy", "precision", "recall", "F1", "ROC AUC", "TP", "FP", "TN", "FN"):
            table.add_column(column, justify="right")
        table.add_row(
            _fmt(m.accuracy),
            _fmt(m.precision),
            _fmt(m.recall),
            _fmt(m.f1),
            _fmt(m.roc_auc),
            str(m.tp),
            str(m.fp),
            str(m.tn),
            str(m.fn),
        )
        console.print(table)
    shown = result.predictions[:10]
    if shown:
        table = Table(show_edge=False, title=f"first {len(shown)} predictions")
        for column in ("id", "label", "predicted", "p(vulnerable)"):
            table.add_column(column, justify="left" if column == "id" else "right")
        for p in shown:
            table.add_row(p.id, _fmt(p.label), str(p.predicted_label), _fmt(p.p_vulnerable))
        console.print(table)
    _warnings(result, console)


def render_rich(result: Any, *, width: int = 100, color: bool = False) -> str:
    """The terminal report as text (with ANSI colour codes when ``color``)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, color_system="standard" if color else None
    )
    renderer = _RENDERERS.get(type(result).__name__)
    if renderer is None:
        raise TypeError(f"no terminal renderer for {type(result).__name__}")
    renderer(result, console)
    return buffer.getvalue()
