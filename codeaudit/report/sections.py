"""Report sections for the built-in result types (see :mod:`codeaudit.report.document`).

One function per result type, registered by class name. Builders read only the result; plots
are drawn here from data the result carries (membership: the sampled ROC curves)."""

from __future__ import annotations

from typing import Any

from codeaudit.report.document import (
    Block,
    Figure,
    Paragraph,
    Section,
    Table,
    fmt,
    pct,
    section_builder,
    sections_for,
)

# -- train ----------------------------------------------------------------------------------------


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


@section_builder("TrainResult")
def _train(result: Any, figures: bool) -> list[Section]:
    held = result.val_metrics
    summary = f"A {result.arch} model was trained on {result.n_train} functions"
    if held is not None:
        summary += (
            f"; it labels {pct(held.accuracy)} of {held.n} held-out validation functions correctly."
        )
    else:
        summary += " (no validation data, so how well it generalises is unknown)."
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


# -- predict --------------------------------------------------------------------------------------


@section_builder("PredictResult")
def _predict(result: Any, figures: bool) -> list[Section]:
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


def checkpoint_fact(info: Any) -> str:
    """How the model was loaded and what it reads, in one line."""
    text = info.source + (" (loaded by full unpickling)" if info.trusted_pickle else "")
    reads = []
    if info.input_format:
        reads.append(f"{info.input_format} text")
    if info.max_len:
        reads.append(f"at most {info.max_len} ids")
    if info.outputs == 1:
        reads.append("one logit (sigmoid)")
    return text + (f"; reads {', '.join(reads)}" if reads else "")


# -- membership -----------------------------------------------------------------------------------

_PLAIN_RISK = {
    "high": (
        "Privacy: HIGH risk. Someone who can send code to this model and read its answers can "
        "tell, far better than by guessing, which functions it was trained on (strongest attack "
        "score {auc}, where 0.5 means guessing and 1.0 means always right). If the training code "
        "is private or licensed, the model gives it away."
    ),
    "medium": (
        "Privacy: moderate risk. An attacker who can query the model can tell which functions it "
        "was trained on somewhat better than by guessing (strongest attack score {auc}; 0.5 is "
        "guessing)."
    ),
    "low": (
        "Privacy: low risk. Attacks on the model do only slightly better than guessing which "
        "functions it was trained on (strongest attack score {auc}; 0.5 is guessing)."
    ),
    "none": (
        "Privacy: no measurable risk. No attack could tell the model's training functions from "
        "other functions better than guessing (strongest attack score {auc}; 0.5 is guessing)."
    ),
}


def _tpr(row: Any, key: str) -> str:
    return fmt(row.tpr_at_fpr.get(key))


@section_builder("MembershipResult")
def _membership(result: Any, figures: bool, top: int = 15) -> list[Section]:
    summary = _PLAIN_RISK.get(result.risk, "Privacy risk: {auc}.").format(
        auc=f"{result.best.auc:.2f}"
    )
    blocks: list[Block] = [Paragraph(result.verdict, emphasis=True)]
    blocks.append(
        Table(
            (
                "attack",
                "family",
                "features",
                "AUC",
                "95% CI",
                "TPR@1% FPR",
                "TPR@0.1% FPR",
                "advantage",
                "balanced acc.",
            ),
            tuple(
                (
                    row.attack,
                    row.family,
                    row.features,
                    fmt(row.auc),
                    f"{row.auc_ci[0]:.3f}-{row.auc_ci[1]:.3f}",
                    _tpr(row, "0.01"),
                    _tpr(row, "0.001"),
                    fmt(row.advantage),
                    fmt(row.accuracy),
                )
                for row in result.attacks[:top]
            ),
            title=f"Strongest attacks ({min(top, len(result.attacks))} of {len(result.attacks)}, "
            "on held-out folds)",
            numeric=(False, False, False, *([True] * 6)),
            note="AUC: 0.5 is guessing, 1.0 always right. TPR at 1% FPR: the share of training "
            "functions an attacker identifies while wrongly accusing 1 in 100 others "
            "('-': too few non-members to measure).",
        )
    )
    if result.by_features:
        blocks.append(
            Table(
                ("features", "attack", "AUC", "TPR@1% FPR"),
                tuple(
                    (row.features, row.attack, fmt(row.auc), _tpr(row, "0.01"))
                    for row in result.by_features
                ),
                title="By model output the attacker sees (best trained attack)",
                numeric=(False, False, True, True),
            )
        )
    u = result.utility
    blocks.append(
        Table(
            ("", "accuracy", "F1"),
            (
                ("training functions (members)", fmt(u.members_accuracy), fmt(u.members_f1)),
                (
                    "unseen functions (non-members)",
                    fmt(u.nonmembers_accuracy),
                    fmt(u.nonmembers_f1),
                ),
            ),
            title="Utility",
            numeric=(False, True, True),
            note=f"Generalisation gap {u.generalization_gap:+.3f}; the AUC this gap alone gives "
            f"a label-only attacker: {u.label_only_floor:.3f}.",
        )
    )
    if result.roc_curves:
        from codeaudit.membership.plot import roc_png

        blocks.append(
            Figure(
                title="ROC curves (log-log)",
                png=roc_png(result.roc_curves, result.n_nonmembers) if figures else None,
                alt="ROC curves of the strongest membership attack of each family on log-log "
                "axes, with the chance diagonal",
                slug="membership-roc",
                caption="The strongest attack of each family. Curves far above the dashed "
                "chance line at the left (low false-positive rates) mean confident attacks.",
            )
        )
    if result.top_risk:
        blocks.append(
            Table(
                ("rank", "id", "score"),
                tuple((str(s.rank), s.id, fmt(s.score, 4)) for s in result.top_risk),
                title="Most exposed training functions (strongest attack)",
                numeric=(True, False, True),
            )
        )
    unk = result.unknown_token_rate
    blocks.append(
        Table(
            ("property", "value"),
            (
                ("members / non-members", f"{result.n_members} / {result.n_nonmembers}"),
                (
                    "unknown-token rate (members / non-members)",
                    f"{pct(unk.get('members'))} / {pct(unk.get('nonmembers'))}",
                ),
                ("tokenizer-channel AUC", fmt(result.tokenizer_channel_auc)),
                *((str(k), fmt(v)) for k, v in result.settings.items()),
                ("seconds", fmt(result.timings.get("total"), 1)),
            ),
            title="Audit settings",
        )
    )
    return [
        Section(
            "Membership inference",
            summary=summary,
            blocks=tuple(blocks),
            status=f"{result.risk} risk",
        )
    ]


# -- audit (combined) -----------------------------------------------------------------------------


@section_builder("AuditResult")
def _audit(result: Any, figures: bool) -> list[Section]:
    sections: list[Section] = []
    for check in result.sections:
        if check.result is None:
            sections.append(
                Section(
                    check.title,
                    summary="",
                    blocks=(Paragraph(f"Not run: {check.reason}"),),
                    status="not run",
                )
            )
        else:
            sections.extend(sections_for(check.result, figures))
    return sections


# -- harden ---------------------------------------------------------------------------------------

_HARDEN_PLAIN = {
    "holds": "Hardening: the defence holds. The hardened model's answers no longer let an "
    "attacker tell its training functions apart beyond the target, and its predicted labels are "
    "exactly the original model's.",
    "partial": "Hardening: the defence does NOT fully hold. Some attack on the hardened model's "
    "answers still exceeds the target; see the before/after table.",
    "unverified": "Hardening: the model was hardened but not checked (no members and "
    "non-members were given), so nothing is known about how well it resists attacks.",
}


@section_builder("HardenResult")
def _harden(result: Any, figures: bool) -> list[Section]:
    d = result.defense
    blocks: list[Block] = [Paragraph(result.verdict, emphasis=True)]
    blocks.append(
        Table(
            ("property", "value"),
            (
                ("defence", f"NMID: {d.expose} exposed ({', '.join(d.exposes)})"),
                ("sigma", f"{d.sigma:.4g} ({d.sigma_source})"),
                ("keyed noise", fmt(d.keyed)),
                ("key fingerprint", d.key_fingerprint),
                ("parent model sha256", d.parent_sha256),
            ),
            title="Defence",
        )
    )
    v = result.verification
    if v is not None:
        blocks.append(
            Table(
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
                note=f"Target {v.target:.3f}: {'met' if v.target_met else 'NOT met'}. "
                f"Label-only attacks reach {v.label_only_auc:.3f}; output noise cannot change "
                "what the labels give away, only retraining can.",
            )
        )
        blocks.append(
            Table(
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
        )
    if result.sweep:
        blocks.append(
            Table(
                (
                    "sigma",
                    "best score AUC",
                    "TPR@1%",
                    "rewrite-averaging AUC",
                    "ROC AUC non-members",
                ),
                tuple(
                    (
                        f"{p.sigma:g}",
                        fmt(p.best_auc),
                        fmt(p.best_tpr_at_1),
                        fmt(p.rewrite_auc),
                        fmt(p.roc_auc_nonmembers),
                    )
                    for p in result.sweep
                ),
                title="Privacy-utility curve",
                numeric=(True,) * 5,
            )
        )
    curve = result.sweep or (result.calibration.points if result.calibration else ())
    if curve:
        from codeaudit.defense.plot import privacy_utility_png

        blocks.append(
            Figure(
                title="Privacy-utility curve",
                png=privacy_utility_png(curve, result.calibration, v, d) if figures else None,
                alt="Strongest membership-attack AUC and the vulnerability score's ROC AUC "
                "against the noise scale sigma",
                slug="harden-curve",
                caption="Lower attack AUC is more private; the ROC AUC shows what the noise "
                "costs the score's ranking (labels never change).",
            )
        )
    for e in result.exports:
        blocks.append(
            Paragraph(
                f"Exported {e.format}: {e.path} (sha256 {e.sha256}); matches the codeaudit "
                f"wrapper on {e.verified_samples} samples (max difference {e.max_abs_diff:.1e})."
            )
        )
    return [
        Section(
            "Hardening (NMID)",
            summary=_HARDEN_PLAIN.get(result.status, result.verdict),
            blocks=tuple(blocks),
            status=result.status,
        )
    ]


# -- backdoor -------------------------------------------------------------------------------------


@section_builder("BackdoorResult")
def _backdoor(result: Any, figures: bool) -> list[Section]:
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
        Table(
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
                for p in result.pairs
            ),
            title="Trigger inversion per label pair",
            numeric=(False, False, False, True, True, True, True, False),
        ),
    ]
    for p in result.pairs:
        if p.shortcuts:
            blocks.append(
                Table(
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
            )
    r = result.real_trigger
    if r is not None:
        found = {True: "are", False: "are NOT", None: "cannot be compared with"}[r.tokens_found]
        blocks.append(
            Paragraph(
                f"Manifest: a {r.type} trigger {r.trigger!r} toward label {r.target_label} "
                f"({r.poisoned} poisoned samples, rate {r.rate:g}) flips "
                f"{pct(r.asr) if r.asr is not None else '-'} of {r.n_asr} victim functions; its "
                f"tokens {found} among the anchored trigger's."
            )
        )
    u = result.unlearning
    if u is not None:
        blocks.append(
            Table(
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
        )
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
