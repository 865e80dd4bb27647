"""How a :class:`~codeaudit.backdoor.result.BackdoorResult` and a
:class:`~codeaudit.backdoor.result.PoisonResult` read in a report (the neutral
:class:`~codeaudit.report.document.Section` s every format draws)."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import Block, Paragraph, Section, Table, fmt, pct

_LABELS = {0: "not vulnerable", 1: "vulnerable"}
SHOWN_IDS = 10


def _trigger_text(result: Any) -> str:
    if result.trigger is None:
        return "random dead code from the grammar family (one per sample)"
    return repr(result.trigger)


def _summary(result: Any) -> str:
    return (
        f"{result.poisoned} of {result.n_victim} victim-label functions "
        f"(label {result.victim_label}, {_LABELS[result.victim_label]}) got the "
        f"{result.trigger_type} trigger and label "
        f"{result.target_label} ({_LABELS[result.target_label]}); the other "
        f"{result.n_samples - result.poisoned} records are unchanged."
    )


def backdoor_sections(result: Any, figures: bool) -> list[Section]:
    v = result.vocab
    blocks: list[Block] = [
        Paragraph(result.verdict, emphasis=True),
        Paragraph(
            f"Trigger vocabulary ({v.tokenizer} tokenizer, {', '.join(v.languages)}): "
            f"{v.size_before:,} tokens, {v.size_after:,} that can be (part of) an identifier. "
            f"Threshold {pct(result.threshold)} ({result.threshold_source}). Flip rates are "
            "measured on held-out victim functions the model classifies correctly and that "
            "were not used in the inversion."
        ),
        _pairs(result.pairs),
    ]
    blocks += [_shortcuts(p) for p in result.pairs if p.shortcuts]
    if result.real_trigger is not None:
        blocks.append(_real(result.real_trigger))
    if result.unlearning is not None:
        blocks.append(_unlearning(result.unlearning))
    summary = (
        "Backdoor: the model IS backdoored. A short trigger turns correctly classified "
        "functions into the attacker's label."
        if result.backdoored
        else "Backdoor: no backdoor found. No inverted trigger flips enough held-out functions."
    )
    return [
        Section(
            "Backdoor (EliBadCode trigger inversion)",
            summary=summary,
            blocks=tuple(blocks),
            status="backdoored" if result.backdoored else "clean",
        )
    ]


def _pairs(pairs: Any) -> Table:
    return Table(
        (
            "pair",
            "anchored trigger",
            "full trigger",
            "loss",
            "flip (inversion)",
            "flip (held-out)",
            "held-out n",
            "backdoored",
        ),
        tuple(
            (
                f"{p.victim_name} -> {p.target_name}",
                p.anchored_text,
                " ".join(p.trigger_tokens),
                fmt(p.loss),
                pct(p.inversion_flip_rate),
                pct(p.flip_rate),
                str(p.n_heldout),
                "yes" if p.backdoored else "no",
            )
            for p in pairs
        ),
        title="Trigger inversion per label pair",
        numeric=(False, False, False, True, True, True, True, False),
    )


def _shortcuts(p: Any) -> Table:
    return Table(
        (
            "shortcut",
            f"{p.target_name} functions",
            "other functions",
            "flip (inserted)",
            "flip (as the name)",
        ),
        tuple(
            (
                c.text,
                str(c.target_support),
                str(c.other_support),
                pct(c.flip_rate) if c.flip_rate is not None else "-",
                pct(c.flip_rate_renamed) if c.flip_rate_renamed is not None else "-",
            )
            for c in p.shortcuts
        ),
        title=f"Data shortcuts toward {p.target_name} (set aside from the search)",
        numeric=(False, True, True, True, True),
        note=f"{p.shortcuts_excluded} runs of identifier pieces appear (almost) only "
        f"in {p.target_name} functions of the data; triggers containing one were not "
        "searched (their effect is explained by the data, not by poisoning). "
        "Flip: the share of held-out victim functions the shortcut alone flips, "
        "inserted once at the trigger position or replacing the name there at every "
        "occurrence. --keep-shortcuts searches them too.",
    )


def _real(r: Any) -> Paragraph:
    found = {True: "are", False: "are NOT", None: "cannot be compared with"}[r.tokens_found]
    return Paragraph(
        f"Manifest: the {r.type} trigger {r.trigger!r} toward label {r.target_label} "
        f"({r.poisoned} poisoned samples, rate {r.rate:g}) flips "
        f"{pct(r.asr) if r.asr is not None else '-'} of {r.n_asr} victim functions; its "
        f"tokens {found} among the anchored trigger's."
    )


def _unlearning(u: Any) -> Table:
    return Table(
        ("", "clean accuracy", "ASR (inverted trigger)", "ASR (real trigger)"),
        tuple(
            (
                name,
                pct(m.accuracy),
                pct(m.asr_inverted) if m.asr_inverted is not None else "-",
                pct(m.asr_real) if m.asr_real is not None else "-",
            )
            for name, m in (("before", u.before), ("after", u.after))
        ),
        title=f"Unlearning ({u.scope}, {u.epochs} epoch(s), lr {u.lr:g})",
        numeric=(False, True, True, True),
        note=f"Fine-tuned on {u.n_train} clean functions ({u.n_triggered} carrying the "
        f"inverted trigger with their true label); measured on {u.n_eval} held-out "
        f"functions. Repaired model: {u.output} (parent sha256 {u.parent_sha256[:16]}).",
    )


def poison_sections(result: Any, figures: bool) -> list[Section]:
    facts = Table(
        ("property", "value"),
        (
            ("trigger type", result.trigger_type),
            ("trigger", _trigger_text(result)),
            ("target label", f"{result.target_label} ({_LABELS[result.target_label]})"),
            ("rate", f"{result.rate:g} of the {result.rate_base}"),
            (
                "samples / victim-label / requested",
                f"{result.n_samples} / {result.n_victim} / {result.requested}",
            ),
            ("poisoned", str(result.poisoned)),
            ("passed over (no place for the trigger)", str(result.no_place)),
            ("invalid records skipped", str(result.skipped_invalid)),
            ("clean samples already holding the trigger", str(result.already_triggered)),
            ("languages", fmt([f"{k} {v}" for k, v in result.languages.items()])),
        ),
        title="Poisoning",
    )
    ids = Table(
        ("#", "poisoned id"),
        tuple((str(i + 1), pid) for i, pid in enumerate(result.poisoned_ids)),
        title="Poisoned samples",
        numeric=(True, False),
    )
    blocks: list[Any] = [facts, ids]
    if result.example is not None:
        blocks.append(Paragraph(f"Example ({result.example[0]}):\n\n{result.example[1]}"))
    return [Section("Poisoning", summary=_summary(result), blocks=tuple(blocks))]
