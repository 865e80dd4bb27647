"""How a :class:`~codeaudit.membership.result.MembershipResult` reads in a report (the neutral
:class:`~codeaudit.report.document.Section` s every format draws)."""

from __future__ import annotations

from typing import Any

from codeaudit.membership.names import SELECTED
from codeaudit.report.document import Block, Figure, Paragraph, Section, Table, fmt, pct

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
    "not-measurable": (
        "Privacy: not measured. The members and non-members differ as data: a baseline that "
        "never queries the model tells them apart (score {blind}), so the attack scores (up to "
        "{auc}) say how the two sets differ, not what the model remembers. Draw non-members "
        "from the same source as the training data and audit again."
    ),
}


def _tpr(row: Any, key: str) -> str:
    return fmt(row.tpr_at_fpr.get(key))


def membership_sections(result: Any, figures: bool, top: int = 15) -> list[Section]:
    blind = result.blind_baseline
    summary = _PLAIN_RISK.get(result.risk, "Privacy risk: {auc}.").format(
        auc=f"{result.best.auc:.2f}", blind=f"{blind.row.auc:.2f}" if blind else "-"
    )
    blocks: list[Block] = [Paragraph(result.verdict, emphasis=True)]
    blocks.append(_attacks_table(result, top))
    if result.by_features:
        blocks.append(_by_features_table(result, figures))
    blocks.append(_utility_table(result, figures))
    if result.roc_curves:
        blocks.append(_roc_figure(result, figures))
    if result.top_risk:
        blocks.append(_top_risk_table(result, figures))
    if getattr(result, "risk_scores", None) is not None:
        blocks.append(_risk_scores_table(result.risk_scores))
    blocks.append(_settings_table(result, figures))
    return [
        Section(
            "Membership inference",
            summary=summary,
            blocks=tuple(blocks),
            status="not measurable" if result.risk == "not-measurable" else f"{result.risk} risk",
        )
    ]


def _attacks_table(result: Any, top: int) -> Any:
    return Table(
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
        "('-': too few non-members to measure)."
        + (
            f" {SELECTED}: a vote of the (up to 5) attack models and feature sets chosen "
            "inside each fold's training part, the trained attack the verdict counts (its "
            "features: the leading model's); each other trained-* row is honest "
            "for that model alone, but the best of many is picked on the folds it is measured "
            "on, which flatters it."
            if any(row.attack == SELECTED for row in result.attacks)
            else ""
        ),
    )


def _by_features_table(result: Any, figures: bool) -> Any:
    return Table(
        ("features", "attack", "AUC", "TPR@1% FPR"),
        tuple(
            (row.features, row.attack, fmt(row.auc), _tpr(row, "0.01"))
            for row in result.by_features
        ),
        title="By model output the attacker sees (best trained attack on each, picked on the "
        "evaluation folds)",
        numeric=(False, False, True, True),
    )


def _utility_table(result: Any, figures: bool) -> Any:
    u = result.utility
    return Table(
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


def _roc_figure(result: Any, figures: bool) -> Any:
    from codeaudit.membership.plot import roc_png

    return Figure(
        title="ROC curves (log-log)",
        png=roc_png(result.roc_curves, result.n_nonmembers) if figures else None,
        alt="ROC curves of the strongest membership attack of each family on log-log "
        "axes, with the chance diagonal",
        slug="membership-roc",
        caption="The strongest attack of each family. Curves far above the dashed "
        "chance line at the left (low false-positive rates) mean confident attacks.",
    )


def _top_risk_table(result: Any, figures: bool) -> Any:
    return Table(
        ("rank", "id", "score"),
        tuple((str(s.rank), s.id, fmt(s.score, 4)) for s in result.top_risk),
        title="Most exposed training functions (strongest attack)",
        numeric=(True, False, True),
    )


_RISK_NAMES = {"attack": "strongest attack", "lira": "LiRA", "shapr": "SHAPr"}
_RISK_SHORT = {
    "attack": "its membership score, out of fold",
    "lira": "per-member likelihood ratio (online)",
    "shapr": "k-NN Shapley value on the embedding, utility: accuracy on the non-members",
}


def _risk_scores_table(risk: Any) -> Any:
    """``--risk-scores``: each score's method, how many members it puts at high risk, and how
    far the scores agree."""
    n = risk.n_members
    rows = tuple(
        (
            _RISK_NAMES.get(m.name, m.name),
            _RISK_SHORT.get(m.name, m.method),
            m.detail,
            f"{m.high_risk} ({m.high_risk / n:.1%})" if m.high_risk is not None and n else "-",
            m.high_rule if m.available else "-",
        )
        for m in risk.methods
    )
    agree = "; ".join(
        f"{_RISK_NAMES.get(c.a, c.a)} vs {_RISK_NAMES.get(c.b, c.b)} {fmt(c.spearman)}"
        for c in risk.correlations
    )
    caught = (
        f" The strongest attack catches {pct(risk.caught_top_shapr)} of the tenth of members "
        f"SHAPr ranks riskiest and {pct(risk.caught_bottom_shapr)} of the tenth it ranks "
        "safest."
        if risk.caught_top_shapr is not None
        else ""
    )
    return Table(
        ("score", "method", "detail", "members at high risk", "high risk means"),
        rows,
        title=f"Per-member risk scores ({n} members, written to {risk.path})",
        numeric=(False, False, False, True, False),
        note="Each method is stated in full in the file's header line. Rank correlation "
        f"(Spearman) over the members: {agree or '-'}.{caught}",
    )


def _blind(result: Any) -> str:
    blind = result.blind_baseline
    if blind is None:
        return "-"
    verdict = "distribution shift" if blind.shift else "no shift"
    return f"{fmt(blind.row.auc)} ({verdict}; shift at >= {blind.threshold:.2f})"


def _checked(result: Any) -> str:
    check = result.inputs
    if check is None or check.recorded == "none":
        return "no (the checkpoint records no split)"
    left_out = (
        f"{check.dropped_members} members and {check.dropped_nonmembers} non-members left out"
    )
    recorded = "training and validation" if check.recorded == "full" else "validation"
    return f"yes ({recorded}); {left_out}"


def _settings_table(result: Any, figures: bool) -> Any:
    unk = result.unknown_token_rate
    return Table(
        ("property", "value"),
        (
            ("members / non-members", f"{result.n_members} / {result.n_nonmembers}"),
            (
                "unknown-token rate (members / non-members)",
                f"{pct(unk.get('members'))} / {pct(unk.get('nonmembers'))}",
            ),
            ("tokenizer-channel AUC", fmt(result.tokenizer_channel_auc)),
            ("model-free baseline AUC (blind)", _blind(result)),
            ("members / non-members checked against the recorded split", _checked(result)),
            *((str(k), fmt(v)) for k, v in result.settings.items()),
            ("seconds", fmt(result.timings.get("total"), 1)),
        ),
        title="Audit settings",
    )
