"""Terminal rendering of a :class:`~codeaudit.backdoor.result.BackdoorResult`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from codeaudit.report.rich import _fmt, _warnings, rich_renderer

SHORTCUTS_SHOWN = 5


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@rich_renderer("BackdoorResult")
def render_backdoor(result: Any, console: Console) -> None:
    style = "bold red" if result.backdoored else "bold green"
    console.print(
        f"[{style}]backdoor: {'BACKDOORED' if result.backdoored else 'NO BACKDOOR FOUND'}[/]",
        highlight=False,
    )
    console.print(escape(result.verdict), highlight=False)
    v = result.vocab
    console.print(
        f"trigger vocabulary ({v.tokenizer} tokenizer, {', '.join(v.languages)}): "
        f"{v.size_before:,} -> {v.size_after:,} tokens"
        + (" (nothing passed the filter: whole vocabulary)" if v.fallback else ""),
        highlight=False,
    )
    table = Table(show_edge=False)
    for column in (
        "pair",
        "anchored trigger",
        "full trigger",
        "loss",
        "flip (inv.)",
        "flip held-out",
        "n",
        "steps",
    ):
        table.add_column(
            column, justify="left" if "trigger" in column or column == "pair" else "right"
        )
    for p in result.pairs:
        flag = " [bold red]<=[/]" if p.backdoored else ""
        table.add_row(
            f"{p.victim_label}->{p.target_label}",
            escape(p.anchored_text or " ".join(p.anchored_tokens)),
            escape(" ".join(p.trigger_tokens)),
            _fmt(p.loss),
            _pct(p.inversion_flip_rate),
            _pct(p.flip_rate) + flag,
            str(p.n_heldout),
            f"{p.steps} ({p.stop})",
        )
    console.print(table)
    console.print(
        f"threshold {_pct(result.threshold)} ({result.threshold_source}); flip rates are on "
        "held-out victim samples the model classifies correctly, not used in the inversion",
        highlight=False,
    )
    for p in result.pairs:
        if p.shortcuts:
            shown = ", ".join(
                f"{c.text} ({c.target_support}/{c.other_support}, flips {_pct(c.flip_rate)} "
                f"inserted, {_pct(c.flip_rate_renamed)} as the name)"
                for c in p.shortcuts[:SHORTCUTS_SHOWN]
            )
            console.print(
                f"data shortcuts toward {escape(p.target_name)} set aside from the "
                f"{p.victim_label}->{p.target_label} search: {p.shortcuts_excluded} "
                f"(strongest, {escape(p.target_name)}/other functions): {escape(shown)}",
                highlight=False,
            )
    if result.real_trigger is not None:
        r = result.real_trigger
        found = {True: "found in", False: "NOT in", None: "not comparable with"}[r.tokens_found]
        console.print(
            f"manifest: {r.type} trigger {escape(repr(r.trigger))} -> label {r.target_label} "
            f"({r.poisoned} poisoned, rate {r.rate:g}); its tokens are {found} the anchored "
            "trigger",
            highlight=False,
        )
    u = result.unlearning
    if u is not None:
        table = Table(
            title=f"unlearning ({u.scope}, {u.epochs} epoch, lr {u.lr:g})", show_edge=False
        )
        for column in ("", "clean accuracy", "ASR inverted", "ASR real trigger"):
            table.add_column(column, justify="right" if column else "left")
        for name, m in (("before", u.before), ("after", u.after)):
            table.add_row(name, _pct(m.accuracy), _pct(m.asr_inverted), _pct(m.asr_real))
        console.print(table)
        console.print(
            f"trained on {u.n_train} clean samples ({u.n_triggered} carrying "
            f"{escape(u.trigger_text)} with their true label); evaluated on {u.n_eval} held-out "
            "samples "
            f"({u.n_eval_victims} victim samples for the ASR); repaired model: {escape(u.output)}",
            highlight=False,
        )
    _warnings(result, console)
