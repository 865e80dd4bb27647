"""Terminal rendering of a :class:`~codeaudit.defense.result.HardenResult`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from codeaudit.report.rich import _fmt, _warnings, rich_renderer

_SHORT_NOTES = {
    "output noise cannot change this": "labels only: unchanged",
    "no noise to average before": "",
    "no scores released": "no scores",
}
_STATUS_STYLE = {"holds": "bold green", "partial": "bold red", "unverified": "yellow"}


def _auc_cell(value: float | None, note: str = "") -> str:
    return _fmt(value) if value is not None else (note or "-")


@rich_renderer("HardenResult")
def render_harden(result: Any, console: Console) -> None:
    style = _STATUS_STYLE.get(result.status, "bold")
    console.print(f"[{style}]harden: NMID {result.status.upper()}[/]", highlight=False)
    console.print(escape(result.verdict), highlight=False)
    d = result.defense
    output = result.header.artifact("output")
    console.print(
        f"defence: sigma {d.sigma:.4g} ({d.sigma_source}), expose {d.expose} (releases "
        f"{', '.join(d.exposes)}), keyed noise, key fingerprint {d.key_fingerprint}; parent "
        f"sha256 {d.parent_sha256[:16]}…",
        highlight=False,
    )
    if output is not None:
        console.print(
            f"hardened model: {escape(output.path)}  sha256 {str(output.sha256)[:16]}…",
            highlight=False,
        )
    c = result.calibration
    if c is not None:
        rewrite = (
            f", rewrite averaging {_fmt(c.rewrite_auc_at_sigma)} (target {_fmt(c.rewrite_target)})"
            if c.rewrite_target is not None
            else ""
        )
        console.print(
            f"calibration ({c.n_members} members, {c.n_nonmembers} non-members): --target-auc "
            f"{c.target_auc:.3f}; labels alone give {c.labels_only_auc:.3f} (correctness floor "
            f"{c.label_only_floor:.3f}), so the target is {c.effective_target:.3f}; sigma "
            f"{c.sigma:.4g}, chosen {c.slack:g} below each target "
            f"({'reached' if c.reached else 'NOT reached'}: strongest score attack "
            f"{_fmt(c.auc_at_sigma)}{rewrite}; {len(c.points)} values tried)",
            highlight=False,
        )
    v = result.verification
    if v is not None:
        table = Table(
            title=f"before / after hardening: {v.n_members} members, {v.n_nonmembers} "
            f"non-members ({v.data})",
            show_edge=False,
        )
        table.add_column("trained on features / attack", no_wrap=True)
        for column in ("AUC before", "TPR@1%", "AUC after", "TPR@1%"):
            table.add_column(column, justify="right")
        table.add_column("", max_width=26)
        group = None
        for row in v.rows:
            if group is not None and row.group != group:
                table.add_section()
            group = row.group
            table.add_row(
                escape(row.name),
                _auc_cell(row.before_auc),
                _fmt(row.before_tpr_at_1),
                _auc_cell(row.after_auc),
                _fmt(row.after_tpr_at_1),
                escape(_SHORT_NOTES.get(row.note, row.note)),
            )
        console.print(table)
        console.print(
            f"strongest attack before: {_fmt(v.best_auc_before)} ({escape(v.best_attack_before)}); "
            f"after, strongest score attack: {_fmt(v.best_score_auc_after)} "
            f"({escape(str(v.best_score_attack_after or '-'))}), target {v.target:.3f}"
            + (
                f"; rewrite averaging {_fmt(v.rewrite_averaging_auc)}, target "
                f"{_fmt(v.rewrite_target)}"
                if v.rewrite_target is not None and v.rewrite_averaging_auc is not None
                else ""
            )
            + f": {'met' if v.target_met else 'NOT met'}",
            highlight=False,
        )
        console.print(
            f"label-only: correctness floor {v.label_only_floor:.3f}, score attacks on labels "
            f"{v.labels_only_auc:.3f}, on rewrites' labels {_fmt(v.rewrite_labels_only_auc)}, "
            f"strongest {v.label_only_auc:.3f} (output noise cannot change these)",
            highlight=False,
        )
        if v.single_query_auc is not None:
            console.print(
                f"adaptive: one query {_fmt(v.single_query_auc)}, repeated-query averaging "
                f"{_fmt(v.repeat_averaging_auc)} (gain {_fmt(v.averaging_gain)}), rewrite "
                f"averaging {_fmt(v.rewrite_averaging_auc)} (gain "
                f"{_fmt(v.rewrite_averaging_gain)})",
                highlight=False,
            )
        table = Table(title="utility (labels are the original model's)", show_edge=False)
        for column in ("data", "n", "accuracy", "F1", "ROC AUC before", "ROC AUC after"):
            table.add_column(column, justify="left" if column == "data" else "right")
        for u in v.utility:
            same = u.accuracy_before == u.accuracy_after and u.f1_before == u.f1_after
            table.add_row(
                u.split,
                str(u.n),
                _fmt(u.accuracy_after) + ("" if same else f" (was {_fmt(u.accuracy_before)})"),
                _fmt(u.f1_after) + ("" if same else f" (was {_fmt(u.f1_before)})"),
                _fmt(u.roc_auc_before),
                _fmt(u.roc_auc_after),
            )
        console.print(table)
    if result.sweep:
        table = Table(title="privacy-utility curve (verification data)", show_edge=False)
        for column in (
            "sigma",
            "best score AUC",
            "TPR@1%",
            "rewrite avg. AUC",
            "ROC AUC members",
            "ROC AUC non-members",
            "strongest attack",
        ):
            if column == "strongest attack":
                table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=34)
            else:
                table.add_column(column, justify="right")
        for p in result.sweep:
            table.add_row(
                f"{p.sigma:g}",
                _fmt(p.best_auc),
                _fmt(p.best_tpr_at_1),
                _fmt(p.rewrite_auc),
                _fmt(p.roc_auc_members),
                _fmt(p.roc_auc_nonmembers),
                escape(p.best_attack or "-"),
            )
        console.print(table)
    for e in result.exports:
        console.print(
            f"export ({e.format}): {escape(e.path)}  sha256 {e.sha256[:16]}…; matches the "
            f"codeaudit wrapper on {e.verified_samples} samples (max |diff| {e.max_abs_diff:.1e})",
            highlight=False,
        )
    if result.plot:
        console.print(f"privacy-utility plot: {escape(result.plot)}", highlight=False)
    _warnings(result, console)
