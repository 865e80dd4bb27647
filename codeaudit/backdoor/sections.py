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
        _pairs(result.pairs, bool(result.references)),
    ]
    if result.calibrated is not None:
        from codeaudit.backdoor.calibration_sections import calibrated_block

        blocks[1:1] = calibrated_block(result.calibrated)
    if result.references:
        blocks.append(_references(result))
    blocks += [_shortcuts(p) for p in result.pairs if p.shortcuts]
    if result.real_trigger is not None:
        blocks.append(_real(result.real_trigger))
    if result.unlearning is not None:
        blocks.append(_unlearning(result.unlearning))
    if result.data_evidence is not None:
        blocks += _data_evidence(result.data_evidence)
    if result.retraining is not None:
        blocks.append(_retraining(result.retraining))
    if result.backdoored:
        summary = (
            "Backdoor: the model IS backdoored. A short trigger turns correctly classified "
            "functions into the attacker's label."
        )
    elif result.verdict_kind == "adversarial":
        summary = (
            "Backdoor: no planted backdoor, but adversarial fragility: a short trigger flips "
            "the model and clean reference models of its recipe alike."
        )
    elif result.verdict_kind == "unplanted":
        summary = (
            "Backdoor: no planted backdoor, but adversarial fragility: a short trigger flips "
            "the model, and the training data does not plant it."
        )
    else:
        summary = (
            "Backdoor: no backdoor found. No inverted trigger flips enough held-out functions."
        )
    if result.calibrated is not None:
        c, h = result.calibrated, result.calibrated.heldout
        summary = (
            f"Backdoor (calibrated): {c.category}, probability of a planted trigger "
            f"{c.probability:.2f} at operating point {c.threshold:.2f} (held-out FPR "
            f"{pct(h.fpr)}, {h.false_positives}/{h.n_clean} clean shadows; TPR {pct(h.tpr)}, "
            f"{h.detected}/{h.n_poisoned} poisoned)."
        )
    return [
        Section(
            "Backdoor (EliBadCode trigger inversion)",
            summary=summary,
            blocks=tuple(blocks),
            status="backdoored"
            if result.backdoored
            else (
                "adversarial"
                if result.verdict_kind in ("adversarial", "fragility", "unplanted")
                else "clean"
            ),
        )
    ]


def _reference_rates(p: Any) -> str:
    return " / ".join(pct(r) if r is not None else "-" for r in p.reference_flip_rates)


def _pairs(pairs: Any, references: bool = False) -> Table:
    head = ["pair", "anchored trigger", "full trigger", "loss", "flip (inversion)"]
    head += ["flip (held-out)", "held-out n"]
    numeric = [False, False, False, True, True, True, True]
    if references:
        head += ["flip (references)", "references max", "kind"]
        numeric += [False, True, False]
    head.append("backdoored")
    numeric.append(False)
    rows = []
    for p in pairs:
        row = [
            f"{p.victim_name} -> {p.target_name}",
            p.anchored_text,
            " ".join(p.trigger_tokens),
            fmt(p.loss),
            pct(p.inversion_flip_rate),
            pct(p.flip_rate),
            str(p.n_heldout),
        ]
        if references:
            top = p.reference_flip_max
            row += [_reference_rates(p), pct(top) if top is not None else "-", p.kind]
        row.append("yes" if p.backdoored else "no")
        rows.append(tuple(row))
    return Table(
        tuple(head),
        tuple(rows),
        title="Trigger inversion per label pair",
        numeric=tuple(numeric),
    )


def _references(result: Any) -> Table:
    return Table(
        ("reference", "source", "seed", "trained on", "sha256"),
        tuple(
            (
                r.name,
                r.source,
                str(r.seed) if r.seed is not None else "-",
                str(r.n_train) if r.n_train is not None else "-",
                r.sha256[:16] if r.sha256 else "-",
            )
            for r in result.references
        ),
        title="Clean reference models",
        numeric=(False, False, True, True, False),
        note="The inversion penalised triggers that flip these models (loss = the model's loss "
        "toward the target + weight x mean over references of max(ln 2 - reference loss, 0)). "
        "Flip (references): the share of the same held-out victim functions, among those each "
        "reference classifies correctly, that the anchored trigger flips on it. A trigger is "
        "planted only when every reference flips less than "
        f"{result.reference_ratio:g} times the model's rate; otherwise it is adversarial. "
        "Trained references never saw the functions the scan judges with.",
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
    refs = ""
    if r.asr_references:
        rates = " / ".join(pct(a) if a is not None else "-" for a in r.asr_references)
        refs = f" On the reference models it flips {rates}."
    return Paragraph(
        f"Manifest: the {r.type} trigger {r.trigger!r} toward label {r.target_label} "
        f"({r.poisoned} poisoned samples, rate {r.rate:g}) flips "
        f"{pct(r.asr) if r.asr is not None else '-'} of {r.n_asr} victim functions; its "
        f"tokens {found} among the anchored trigger's.{refs}"
    )


def _unlearning(u: Any) -> Table:
    def opt(value: float | None) -> str:
        return pct(value) if value is not None else "-"

    forms = ", ".join(f"{n} {form}" for form, n in u.forms.items()) if u.forms else "none"
    if u.form_flips:
        tried = ", ".join(f"{form} {pct(rate)}" for form, rate in u.form_flips.items())
        forms += f"; flip rate of each attack form before repair: {tried}"
    excess = (
        f" After repair the real trigger flips {100 * u.asr_excess:+.1f} points beyond the "
        "clean miss rate (target: at most +2)."
        if u.asr_excess is not None
        else ""
    )
    return Table(
        (
            "",
            "clean accuracy",
            "ASR (inverted trigger)",
            "ASR (real trigger)",
            "ASR (real, all victims)",
            "clean miss rate",
        ),
        tuple(
            (
                name,
                pct(m.accuracy),
                opt(m.asr_inverted),
                opt(m.asr_real),
                opt(m.asr_real_all),
                opt(m.miss_rate),
            )
            for name, m in (("before", u.before), ("after", u.after))
        ),
        title=f"Unlearning ({u.scope}, {u.epochs} epoch(s), lr {u.lr:g}, {u.insertion} insertion)",
        numeric=(False, True, True, True, True, True),
        note=f"Fine-tuned on {u.n_train} clean functions ({u.n_triggered} carrying the "
        f"inverted trigger with their true label; inserted as: {forms}); measured on {u.n_eval} "
        f"held-out functions. The first two ASR columns count the victims the original model "
        f"classified correctly; the last two every one of the {u.after.n_victims} victim-label "
        f"functions ({u.after.n_real_all} took the real trigger): the clean miss rate is the "
        f"share sent to the target with no trigger, what a trigger that does nothing would "
        f"show.{excess} Repaired model: {u.output} (parent sha256 {u.parent_sha256[:16]}).",
    )


def _data_evidence(d: Any) -> list[Block]:
    label = f"{d.target_label} ({_LABELS.get(d.target_label, d.target_label)})"
    if d.tied:
        said = (
            f"The inverted trigger is the training data's: its piece {d.tied_piece!r} is "
            f"concentrated in training samples with label {label}, and the data scan flagged "
            "them. A trigger found by inversion and planted in target-labelled training samples "
            "is what poisoning leaves behind (reference models tell a natural shortcut of the "
            "data from a planted one)."
        )
    else:
        said = (
            "No piece of the inverted trigger is concentrated in flagged training samples of "
            f"label {label}."
        )
    blocks: list[Block] = [
        Paragraph(
            f"Training data: {d.n_samples} functions, {pct(d.base_rate)} with label {label}; the "
            f"data scan (KillBadCode naturalness with label concentration) found {d.n_likely} "
            f"likely trigger(s) and flagged {d.n_flagged} sample(s). {said}"
        ),
        Table(
            ("piece", "samples", "with the target label", "excess purity", "evidence",
             "flagged"),
            tuple(
                (
                    p.piece,
                    str(p.support),
                    str(p.target_count),
                    fmt(p.excess_purity),
                    fmt(p.evidence, 1),
                    pct(p.flagged_share),
                )
                for p in d.pieces
            ),
            title="The inverted trigger's pieces in the training data",
            numeric=(False, True, True, True, True, True),
            note=f"Evidence: -log10 of the binomial tail against the base rate (the data scan's "
            f"bound: {d.evidence_threshold:.1f}).",
        ),
    ]  # fmt: skip
    if d.tried:
        blocks.append(
            Table(
                ("kind", "likely trigger", "flips", "victims", "clean functions holding it",
                 "confirmed"),
                tuple(
                    (t.kind, t.text, pct(t.flip_rate), str(t.n), str(t.in_clean_data),
                     fmt(t.confirmed))
                    for t in d.tried
                ),
                title="The training data's likely triggers, tried on the model",
                numeric=(False, False, True, True, True, False),
                note="Inserted into held-out victim functions as the attack would (a variable "
                "renamed to the name, the postfix on the function's name). Confirmed: flips at "
                "least the threshold and no function of --data holds it (a natural name of the "
                "data is in clean code too).",
            )
        )  # fmt: skip
    if d.planted:
        blocks.append(Paragraph(f"Planted trigger (training data): {d.finding}.", emphasis=True))
    if d.likely_triggers:
        blocks.append(
            Table(
                ("kind", "candidate", "samples", "purity", "score"),
                tuple(
                    (c.kind, c.text, str(c.support), pct(c.purity), fmt(c.score))
                    for c in d.likely_triggers
                ),
                title="Likely triggers in the training data (data scan)",
                numeric=(False, False, True, True, True),
            )
        )
    return blocks


def _retraining(r: Any) -> Table:
    return Table(
        ("", "clean accuracy", "ASR (real trigger)", "clean miss rate"),
        tuple(
            (
                name,
                pct(m.accuracy),
                pct(m.asr_real) if m.asr_real is not None else "-",
                pct(m.miss_rate) if m.miss_rate is not None else "-",
            )
            for name, m in (("before", r.before), ("after", r.after))
        ),
        title=f"Retraining without the flagged samples ({r.arch}, {r.epochs} epoch(s))",
        numeric=(False, True, True, True),
        note=f"Trained the checkpoint's recipe on {r.n_kept} of {r.n_train} training functions "
        f"({r.n_removed} flagged ones dropped), seed {r.seed}, in {r.seconds:.1f} s. Measured on "
        f"the {r.after.n_victims} victim-label functions of the evaluation split ({r.after.n_real} "
        "took the real trigger); the clean miss rate is the share sent to the target label "
        "without any trigger: the attack success rate of a trigger that does nothing.",
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
