"""How a :class:`~codeaudit.backdoor.scan_result.PoisonScanResult` reads in a report."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Paragraph, Section, Table, fmt, pct

SHOWN_IDS = 20


def poison_scan_sections(result: Any, figures: bool) -> list[Section]:
    rates = ", ".join(f"label {k}: {pct(v)}" for k, v in result.base_rates.items())
    facts = Paragraph(
        f"{result.n_samples:,} functions, {result.n_tokens:,} tokens ({result.vocab_size:,} "
        f"distinct) in a {result.order}-gram Witten-Bell model of the data itself; each "
        f"function is scored as if left out of it (mean {fmt(result.mean_cross_entropy)} bits "
        f"per token). Base rates: {rates}. {result.n_candidates:,} names, postfixes and "
        "statement shapes occur often enough to be tested; a likely trigger has an excess "
        f"purity of at least {fmt(result.settings.get('min_purity'))}, evidence of at least "
        f"{fmt(result.evidence_threshold)} (-log10 p, binomial, Bonferroni) in the target label "
        f"{result.settings.get('target_label')}, and a score of at least "
        f"{fmt(result.settings.get('min_share'))} of the best."
    )
    table = Table(
        (
            "kind",
            "candidate",
            "gain",
            "in top-k",
            "support",
            "label",
            "purity",
            "evidence",
            "score",
            "likely trigger",
        ),
        tuple(
            (
                c.kind,
                c.text,
                fmt(c.gain),
                str(c.top_in),
                str(c.support),
                str(c.label),
                pct(c.purity),
                fmt(c.evidence),
                fmt(c.score),
                "yes" if c.likely_trigger else "no",
            )
            for c in result.candidates
        ),
        title="Trigger candidates",
        numeric=(False, False, True, True, True, True, True, True, True, False),
        note="Gain: how much more natural (bits per token) the functions where the candidate "
        "is among the top units become without it, summed (KillBadCode). Purity: the share of "
        "its carriers with the label. Score: gain x excess purity.",
    )
    blocks: list[Any] = [facts, table]
    if result.flagged_ids:
        shown = result.flagged_ids[:SHOWN_IDS]
        more = len(result.flagged_ids) - len(shown)
        blocks.append(
            Paragraph(
                f"Flagged samples ({result.n_flagged}): "
                + ", ".join(shown)
                + (f" and {more} more" if more else "")
                + (f"; all written to {result.output}." if result.output else ".")
            )
        )
    if result.planted_trigger:
        names = ", ".join(repr(c.text) for c in result.likely_triggers)
        summary = (
            f"Likely planted trigger(s): {names}; {result.n_flagged} training samples carry "
            "one with its label. Remove them and retrain."
        )
    else:
        summary = "No likely planted trigger: no candidate is both out of place and label-pure."
    return [
        Section(
            "Training-data scan (KillBadCode naturalness and label concentration)",
            summary=summary,
            blocks=tuple(blocks),
            status="poisoned" if result.planted_trigger else "clean",
        )
    ]
