"""From evaluated attacks to what the report says: rows, ranking, the risk level and the verdict,
and the checks on the data that would make an audit misleading."""

from __future__ import annotations

import hashlib

from codeaudit.data.samples import Dataset
from codeaudit.errors import DataError, UsageError
from codeaudit.membership.evaluate import SELECTED, Evaluated
from codeaudit.membership.result import AttackRow, BlindBaseline, Utility

MIN_SAMPLES = 10


def attack_row(ev: Evaluated) -> AttackRow:
    s = ev.score
    return AttackRow(
        attack=ev.attack,
        family=ev.family,
        features="+".join(ev.features),
        auc=s.auc,
        auc_ci=s.auc_ci,
        accuracy=s.balanced_accuracy,
        precision=s.precision,
        recall=s.recall,
        f1=s.f1,
        advantage=s.advantage,
        tpr_at_fpr=dict(s.tpr_at_fpr),
        n_members=s.n_members,
        n_nonmembers=s.n_nonmembers,
        seconds=round(ev.seconds, 4),
    )


def tpr_at_1(row: AttackRow) -> float:
    """TPR at 1% FPR for ranking; -1 when the data cannot measure it."""
    value = row.tpr_at_fpr.get("0.01")
    return -1.0 if value is None else value


def risk_key(row: AttackRow) -> tuple[float, float, str, str]:
    """Strongest first: AUC, then TPR at 1% FPR, then names (a stable order)."""
    return (-row.auc, -tpr_at_1(row), row.attack, row.features)


def ranked(rows: list[AttackRow]) -> list[AttackRow]:
    """The rows that compete for "strongest attack". Where a family has the cross-fitted
    selection of its trained attack model (:data:`~codeaudit.membership.evaluate.SELECTED`), it
    stands for that family's trained models: their individual rows stay in the table, but the
    largest of them, picked on the very folds it is measured on, is an optimistic estimate
    (with 105 models on pure noise it is well above 0.5) and would bias the verdict upward."""
    selecting = {r.family for r in rows if r.attack == SELECTED}
    return [
        r
        for r in rows
        if r.family not in selecting or r.attack == SELECTED or not r.attack.startswith("trained-")
    ]


def verdict(best: AttackRow, best_tpr: AttackRow, utility: Utility) -> tuple[str, str]:
    """(risk level, one plain-language paragraph)."""
    lo, hi = best.auc_ci
    tpr = max(tpr_at_1(best_tpr), 0.0)
    measurable = best_tpr.tpr_at_fpr.get("0.01") is not None
    if best.auc >= 0.6 or tpr >= 0.1:
        risk = "high"
        head = "High membership leakage."
    elif best.auc >= 0.55:
        risk = "medium"
        head = "Moderate membership leakage."
    elif lo > 0.5:
        risk = "low"
        head = "Low but measurable membership leakage."
    else:
        risk = "none"
        head = "No measurable membership leakage."
    text = (
        f"{head} The strongest attack ({best.attack} on {best.features}) tells the model's "
        f"training functions from unseen ones with AUC {best.auc:.3f} (95% CI {lo:.3f}-{hi:.3f}; "
        "0.5 is guessing). "
        + (
            f"At a 1% false-positive rate, {best_tpr.attack} on {best_tpr.features} identifies "
            f"{tpr:.1%} of the training functions. "
            if measurable
            else "There are too few non-members to measure a 1% false-positive rate "
            "(at least 100 are needed). "
        )
        + f"The model is right on {utility.members_accuracy:.1%} of its training functions and "
        f"{utility.nonmembers_accuracy:.1%} of unseen ones"
    )
    if utility.generalization_gap > 0.05:
        text += (
            f": that {utility.generalization_gap:.1%} gap alone lets an attacker who sees only "
            f"labels reach AUC {utility.label_only_floor:.3f}."
        )
    elif risk == "none":
        text += ": it generalises, and its outputs do not give its training data away."
    else:
        text += "."
    return risk, text


NOT_MEASURABLE = "not-measurable"


def blind_baseline(baselines: list[Evaluated], best: AttackRow) -> BlindBaseline | None:
    """The blind baseline's row and whether it shows a distribution shift (None: not run)."""
    from codeaudit.membership.blind import SHIFT_AUC, SHIFT_MARGIN, is_shift

    if not baselines:
        return None
    row = max((attack_row(ev) for ev in baselines), key=lambda r: r.auc)
    return BlindBaseline(row, is_shift(row, best), SHIFT_AUC, SHIFT_MARGIN)


def _blind_figures(blind: AttackRow) -> str:
    lo, hi = blind.auc_ci
    return f"AUC {blind.auc:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def shift_verdict(blind: AttackRow, best: AttackRow) -> tuple[str, str]:
    """(risk, verdict) when the members and non-members differ in distribution: the attacks
    measure the difference, so no leakage level is claimed either way."""
    compared = "better than" if blind.auc > best.auc else "about as well as"
    return NOT_MEASURABLE, (
        "Not measurable: distribution shift. A model-free baseline that never queries the model "
        f"tells the members from the non-members with {_blind_figures(blind)}, {compared} the "
        f"strongest attack ({best.attack} on {best.features}, AUC {best.auc:.3f}): the two sets "
        "differ as data, so the attack figures below measure that difference, not what the "
        "model remembers. Audit again with non-members from the same source as the members."
    )


def shift_warnings(blind: BlindBaseline | None, best: AttackRow) -> list[str]:
    """What the blind baseline says about the inputs, when it says anything."""
    from codeaudit.membership.blind import SHIFT_FLOOR

    if blind is None:
        return []
    row = blind.row
    if blind.shift:
        return [
            f"DISTRIBUTION SHIFT: a model-free baseline (a bag of code tokens and code "
            f"statistics, no query to the model) tells --members from --nonmembers with "
            f"{_blind_figures(row)}; the strongest attack reaches {best.auc:.3f}. The sets differ "
            "as data (vocabulary, length, style), so the attack AUCs measure that difference, "
            "not memorisation, and the verdict is 'not measurable'. Draw the non-members from "
            "the same source as the members: the samples held out for validation (train with "
            "--val FILE to have them in a file of their own) or an unused part of the same data "
            "set"
        ]
    if row.auc >= SHIFT_FLOOR and row.auc_ci[0] > 0.5:
        return [
            f"members and non-members differ somewhat as data (model-free baseline "
            f"{_blind_figures(row)}): attack AUCs up to about that much owe something to the "
            f"difference; the strongest attack ({best.auc:.3f}) goes beyond it"
        ]
    return []


def _normalised(code: str) -> bytes:
    """A digest of the code with whitespace normalised (digests, not copies of every member's
    code, are what the overlap check holds)."""
    text = " ".join(code.split()).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=16).digest()


def data_warnings(members: Dataset, nonmembers: Dataset) -> list[str]:
    """What makes a membership audit misleading: overlap and very different set sizes."""
    warnings = []
    member_texts = {_normalised(s.code) for s in members}
    overlap = sum(_normalised(s.code) in member_texts for s in nonmembers)
    if overlap:
        warnings.append(
            f"{overlap} non-member functions are identical to a member after whitespace "
            "normalisation: the model has seen them, so they inflate the false-positive rate and "
            "understate leakage; remove them"
        )
    ratio = max(len(members), len(nonmembers)) / max(1, min(len(members), len(nonmembers)))
    if ratio > 3:
        warnings.append(
            f"members ({len(members)}) and non-members ({len(nonmembers)}) differ {ratio:.1f}x in "
            "size: AUC and TPR at low FPR stay valid, but accuracy-type metrics and the "
            "confidence intervals are dominated by the smaller set"
        )
    return warnings


def check_sets(members: Dataset, nonmembers: Dataset, folds: int) -> None:
    """Enough members and non-members, of both labels, for ``folds`` folds."""
    for name, data in (("members", members), ("non-members", nonmembers)):
        if len(data) < MIN_SAMPLES:
            raise DataError(
                f"{data.path}: {len(data)} {name}: a membership audit needs at least "
                f"{MIN_SAMPLES} of each"
            )
        if len(data) < folds:
            raise UsageError(f"--folds {folds}: only {len(data)} {name}")
    labels = {s.label for s in members} | {s.label for s in nonmembers}
    if len(labels) < 2:
        raise DataError(
            f"{members.path}, {nonmembers.path}: every function has label {labels.pop()}; the "
            "audit needs both vulnerable and non-vulnerable functions (utility, loss-based "
            "attacks and reference models are defined per class)"
        )
