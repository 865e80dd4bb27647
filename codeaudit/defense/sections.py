"""How a :class:`~codeaudit.defense.result.HardenResult` reads in a report (the neutral
:class:`~codeaudit.report.document.Section` s every format draws)."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Block, Figure, Paragraph, Section, Table, fmt

_HARDEN_PLAIN = {
    "holds": "Hardening: the defence holds. The hardened model's answers no longer let an "
    "attacker tell its training functions apart beyond the target, and its predicted labels are "
    "exactly the original model's.",
    "partial": "Hardening: the defence does NOT fully hold. Some attack on the hardened model's "
    "answers still exceeds the target; see the before/after table.",
    "unverified": "Hardening: the model was hardened but not checked (no members and "
    "non-members were given), so nothing is known about how well it resists attacks.",
}


def harden_sections(result: Any, figures: bool) -> list[Section]:
    blocks: list[Block] = [Paragraph(result.verdict, emphasis=True), _defence(result.defense)]
    v = result.verification
    if v is not None:
        blocks += [_comparison(v), _utility(v)]
    if result.frontier is not None:
        blocks.append(_frontier(result.frontier))
    if result.sweep:
        blocks.append(_sweep(result.sweep))
    curve = result.sweep or (result.calibration.points if result.calibration else ())
    if curve:
        blocks.append(_curve(result, curve, figures))
    for e in result.exports:
        blocks.append(
            Paragraph(
                f"Exported {e.format}: {e.path} (sha256 {e.sha256}); matches the codeaudit "
                f"wrapper on {e.verified_samples} samples (max difference {e.max_abs_diff:.1e})."
            )
        )
    summary = _HARDEN_PLAIN.get(result.status, result.verdict)
    if v is not None:  # why it holds or not, on the first screen
        summary = " ".join((summary, *v.target_lines()))
    if result.frontier is not None:  # the operating point, in one line
        summary = " ".join((summary, result.frontier.reason))
    return [
        Section(
            "Hardening (NMID)",
            summary=summary,
            blocks=tuple(blocks),
            status=result.status,
        )
    ]


def _defence(d: Any) -> Table:
    return Table(
        ("property", "value"),
        (
            ("defence", f"NMID: {d.expose} exposed ({', '.join(d.exposes)})"),
            (
                ("confidence bands", f"{d.bands} ({d.sigma_source})")
                if d.bands is not None
                else ("sigma", f"{d.sigma:.4g} ({d.sigma_source})")
            ),
            ("keyed noise", fmt(d.keyed)),
            ("key fingerprint", d.key_fingerprint),
            ("parent model sha256", d.parent_sha256),
        ),
        title="Defence",
    )


def _comparison(v: Any) -> Table:
    return Table(
        (
            "group",
            "features / attack",
            "AUC before",
            "TPR@1% before",
            "AUC after",
            "TPR@1% after",
            "note",
        ),
        tuple(
            (
                row.group,
                row.name,
                fmt(row.before_auc),
                fmt(row.before_tpr_at_1),
                fmt(row.after_auc),
                fmt(row.after_tpr_at_1),
                row.note,
            )
            for row in v.rows
        ),
        title=f"Before and after hardening ({v.n_members} members, {v.n_nonmembers} "
        f"non-members: {v.data})",
        numeric=(False, False, True, True, True, True, False),
        note=" ".join(v.target_lines()),
    )


def _utility(v: Any) -> Table:
    return Table(
        (
            "data",
            "n",
            "accuracy before",
            "accuracy after",
            "F1 before",
            "F1 after",
            "ROC AUC before",
            "ROC AUC after",
        ),
        tuple(
            (
                u.split,
                str(u.n),
                fmt(u.accuracy_before),
                fmt(u.accuracy_after),
                fmt(u.f1_before),
                fmt(u.f1_after),
                fmt(u.roc_auc_before),
                fmt(u.roc_auc_after),
            )
            for u in v.utility
        ),
        title="Utility",
        numeric=(False, *([True] * 7)),
    )


def _frontier(f: Any) -> Table:
    def mark(p: Any) -> str:
        notes = []
        if p.name == f.chosen:
            notes.append("chosen")
        if p.name == f.shipped:
            notes.append("shipped")
        if p.pareto:
            notes.append("frontier")
        if p.kind in ("gaussian", "banded") and not p.meets:
            notes.append("over target")
        return ", ".join(notes)

    return Table(
        (
            "release",
            "strongest score attack AUC",
            "rewrite-averaging AUC",
            "ROC AUC non-members",
            "note",
        ),
        tuple(
            (p.name, fmt(p.attack_auc), fmt(p.rewrite_auc), fmt(p.roc_auc_nonmembers), mark(p))
            for p in f.points
        ),
        title=f"Privacy-utility frontier ({f.noise} noise; {f.data}; target {f.target:.3f})",
        numeric=(False, True, True, True, False),
        note=f.reason + (f" Shipped: {f.shipped}." if f.shipped != f.chosen else ""),
    )


def _sweep(points: Any) -> Table:
    return Table(
        ("setting", "best score AUC", "TPR@1%", "rewrite-averaging AUC", "ROC AUC non-members"),
        tuple(
            (
                p.setting,
                fmt(p.best_auc),
                fmt(p.best_tpr_at_1),
                fmt(p.rewrite_auc),
                fmt(p.roc_auc_nonmembers),
            )
            for p in points
        ),
        title="Privacy-utility curve",
        numeric=(False, True, True, True, True),
    )


def _curve(result: Any, curve: Any, figures: bool) -> Figure:
    from codeaudit.defense.plot import privacy_utility_png

    png = (
        privacy_utility_png(curve, result.calibration, result.verification, result.defense)
        if figures
        else None
    )
    return Figure(
        title="Privacy-utility curve",
        png=png,
        alt="Strongest membership-attack AUC and the vulnerability score's ROC AUC "
        "against the noise scale sigma",
        slug="harden-curve",
        caption="Lower attack AUC is more private; the ROC AUC shows what the noise "
        "costs the score's ranking (labels never change).",
    )
