"""Terminal rendering with rich: a result in, text out (so it can be tested like any string)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
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
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    for finding in getattr(result, "findings", ()):
        severity = escape(f"[{finding.severity.value}]")
        console.print(
            f"[bold red]{finding.rule_id}[/] {severity} {escape(finding.message)}",
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
            table.add_row(escape(p.id), _fmt(p.label), str(p.predicted_label), _fmt(p.p_vulnerable))
        console.print(table)
    _warnings(result, console)


_RISK_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "none": "green"}


def _tpr(row: Any, key: str) -> str:
    return _fmt(row.tpr_at_fpr.get(key))


@rich_renderer("MembershipResult")
def _membership(result: Any, console: Console, top: int = 15) -> None:
    style = _RISK_STYLE.get(result.risk, "bold")
    console.print(f"[{style}]membership risk: {result.risk.upper()}[/]", highlight=False)
    console.print(escape(result.verdict), highlight=False)
    console.print(
        f"{result.n_members} members, {result.n_nonmembers} non-members; "
        f"{len(result.attacks)} attack runs in {result.timings.get('total', 0):.1f}s",
        highlight=False,
    )
    table = Table(
        title=f"strongest attacks (of {len(result.attacks)}), held-out folds", show_edge=False
    )
    for column in ("attack", "features", "AUC", "95% CI", "TPR@1%", "TPR@0.1%", "adv.", "bal.acc"):
        table.add_column(column, justify="left" if column in ("attack", "features") else "right")
    for row in result.attacks[:top]:
        table.add_row(
            row.attack,
            row.features,
            _fmt(row.auc),
            f"{row.auc_ci[0]:.3f}-{row.auc_ci[1]:.3f}",
            _tpr(row, "0.01"),
            _tpr(row, "0.001"),
            _fmt(row.advantage),
            _fmt(row.accuracy),
        )
    console.print(table)
    if result.by_features:
        table = Table(title="by feature combination (best trained attack)", show_edge=False)
        for column in ("features", "attack", "AUC", "TPR@1%"):
            table.add_column(
                column, justify="left" if column in ("features", "attack") else "right"
            )
        for row in result.by_features:
            table.add_row(row.features, row.attack, _fmt(row.auc), _tpr(row, "0.01"))
        console.print(table)
    u = result.utility
    console.print(
        f"utility: members accuracy {u.members_accuracy:.3f} (F1 {u.members_f1:.3f}), "
        f"non-members accuracy {u.nonmembers_accuracy:.3f} (F1 {u.nonmembers_f1:.3f}), "
        f"gap {u.generalization_gap:+.3f}, label-only floor AUC {u.label_only_floor:.3f}",
        highlight=False,
    )
    if result.top_risk:
        table = Table(title="most exposed members (strongest attack)", show_edge=False)
        for column in ("rank", "id", "score"):
            table.add_column(column, justify="left" if column == "id" else "right")
        for item in result.top_risk:
            table.add_row(str(item.rank), escape(item.id), _fmt(item.score, 4))
        console.print(table)
    if result.roc_plot:
        console.print(f"ROC curves: {result.roc_plot}", highlight=False)
    _warnings(result, console)


@rich_renderer("AuditResult")
def _audit(result: Any, console: Console) -> None:
    for check in result.sections:
        console.rule(f"[bold]{escape(check.title)}[/]", align="left")
        if check.result is None:
            console.print(f"not run: {escape(check.reason or '')}", highlight=False)
            continue
        renderer = _RENDERERS.get(type(check.result).__name__)
        if renderer is None:
            console.print(f"(no terminal view for {type(check.result).__name__})")
        else:
            renderer(check.result, console)
    console.rule("[bold]release gate[/]", align="left")
    _warnings(result, console)


def _gate(result: Any, console: Console) -> None:
    gate = getattr(getattr(result, "header", None), "gate", None)
    if gate is None:
        return
    n = len(getattr(result, "findings", ()))
    parts = [f"{n} finding{'s' if n != 1 else ''}", f"{gate.rules_evaluated} rules"]
    if gate.baseline is not None:
        parts.append(f"{gate.baseline.suppressed} suppressed by baseline {gate.baseline.path}")
    if gate.fail_on == "never":
        verdict = "[bold]gate off[/] (--fail-on never)"
    elif gate.exit_code == 0:
        verdict = f"[bold green]PASS[/] (fail on {gate.fail_on})"
    else:
        verdict = f"[bold red]FAIL[/] (fail on {gate.fail_on})"
    console.print(f"{verdict}: {escape(', '.join(parts))}", highlight=False)


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
    _gate(result, console)
    return buffer.getvalue()
