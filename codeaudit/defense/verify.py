"""Verifying NMID: the membership suite on the original and on the hardened model, side by side
(:func:`verify`), and the plain-language verdict on what the defence holds against
(:func:`verdict`). :mod:`codeaudit.defense.check` runs it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codeaudit.config import HardenConfig
from codeaudit.defense.evaluate import (
    Observations,
    label_only_floor,
    label_only_suite,
    labels_only_suites,
    query_margins,
    relabel,
    released_features,
    released_suite,
    score_roc_auc,
    score_suite,
    strongest,
)
from codeaudit.defense.result import (
    Calibration,
    ComparisonRow,
    DefenseInfo,
    UtilityRow,
    Verification,
)
from codeaudit.membership.attacks.threshold import SIGNALS
from codeaudit.membership.evaluate import Evaluated, make_folds
from codeaudit.membership.features import all_feature_sets, extract_features, usable_features
from codeaudit.metrics import classification_metrics
from codeaudit.models.nmid import NMID, Exposure, HardenedModel

Progress = Callable[[str, int, int], None]
MIN_SAMPLES = 10


def _row(ev: Evaluated):  # type: ignore[no-untyped-def]
    from codeaudit.membership.judge import attack_row as membership_row

    return membership_row(ev)


def _tpr1(ev: Evaluated | None) -> float | None:
    return None if ev is None else ev.score.tpr_at_fpr.get("0.01")


def _name(ev: Evaluated) -> str:
    return f"{ev.attack} on {'+'.join(ev.features)}"


def _comparison(
    before: Sequence[Evaluated],
    after: Sequence[Evaluated],
    repeat: Sequence[Evaluated],
    rewrites: Sequence[Evaluated],
    usable_after: frozenset[str],
    queries: int,
    n_rewrites: int,
) -> list[ComparisonRow]:
    rows: list[ComparisonRow] = []

    def pair(group: str, name: str, b: Evaluated | None, a: Evaluated | None, note: str) -> None:
        rows.append(
            ComparisonRow(
                group,
                name,
                None if b is None else b.score.auc,
                _tpr1(b),
                None if a is None else a.score.auc,
                _tpr1(a),
                None if a is None else _name(a),
                note,
            )
        )

    for feature_set in all_feature_sets():
        b = strongest([e for e in before if e.family == "trained" and e.features == feature_set])
        a = strongest([e for e in after if e.family == "trained" and e.features == feature_set])
        exposed = set(feature_set) <= usable_after
        pair("feature set", "+".join(feature_set), b, a, "" if exposed else "not exposed")
    for signal in SIGNALS:
        attack = f"threshold-{signal}"
        b = next((e for e in before if e.attack == attack), None)
        a = next((e for e in after if e.attack == attack), None)
        pair("threshold", attack, b, a, "" if a is not None else "not exposed")
    note = "output noise cannot change this"
    for attack in ("label-only-correctness", "label-only-boundary"):
        b = next((e for e in before if e.attack == attack), None)
        a = next((e for e in after if e.attack == attack), None)
        if b is not None or a is not None:
            pair("label-only", attack, b, a, note)
    for name, prefix in (
        ("labels only: the score attacks on labels", "labels/"),
        ("labels only: averaged over rewrites", "labels/rewrites"),
    ):

        def chosen(group: Sequence[Evaluated], prefix: str = prefix) -> Evaluated | None:
            picked = [e for e in group if e.attack.startswith(prefix)]
            if prefix == "labels/":
                picked = [e for e in picked if not e.attack.startswith("labels/rewrites")]
            return strongest(picked)

        b, a = chosen(before), chosen(after)
        if b is not None or a is not None:
            pair("label-only", name, b, a, note)
    pair(
        "adaptive",
        f"repeat-averaging ({queries} queries)",
        None,
        strongest(list(repeat)),
        "" if repeat else "no scores released",
    )
    pair(
        "adaptive",
        f"rewrite-averaging (up to {n_rewrites} rewrites)",
        None,
        strongest(list(rewrites)),
        "" if rewrites else "no scores released" if n_rewrites else "off (--rewrites 0)",
    )
    return rows


def _utility(
    obs: Observations, after_predicted: np.ndarray, after_margin: np.ndarray
) -> list[UtilityRow]:
    rows = []
    clean_margin = obs.clean.logits[:, 1].astype(np.float64) - obs.clean.logits[:, 0]
    for split, mask in (("members", obs.membership == 1), ("non-members", obs.membership == 0)):
        labels = obs.clean.labels[mask]
        before = classification_metrics(labels, obs.clean.predicted[mask])
        after = classification_metrics(labels, after_predicted[mask])
        rows.append(
            UtilityRow(
                split=split,
                n=int(mask.sum()),
                accuracy_before=float(before["accuracy"]),
                accuracy_after=float(after["accuracy"]),
                f1_before=float(before["f1"]),
                f1_after=float(after["f1"]),
                roc_auc_before=score_roc_auc(labels, clean_margin[mask]),
                roc_auc_after=score_roc_auc(labels, after_margin[mask]),
            )
        )
    return rows


@dataclasses.dataclass
class _Suite:
    """The attacks of one verification, run on the same folds."""

    obs: Observations
    config: HardenConfig
    folds: list[tuple[np.ndarray, np.ndarray]]

    @property
    def kw(self) -> dict[str, int]:
        return {"n_boot": self.config.n_boot, "seed": self.config.seed}

    def labels_only(self, logits: np.ndarray) -> list[Evaluated]:
        single, averaged = labels_only_suites(
            self.obs, logits, self.folds, self.config.attack_classifiers, **self.kw
        )
        return single + averaged

    def scores(self, features: Any, usable: frozenset[str]) -> list[Evaluated]:
        return score_suite(
            features,
            self.obs.membership,
            self.folds,
            usable,
            self.config.attack_classifiers,
            **self.kw,
        )

    def label_only(self, model: Any, features: Any) -> list[Evaluated]:
        config = self.config
        return label_only_suite(
            model,
            self.obs,
            features,
            self.folds,
            boundary_samples=config.boundary_samples,
            boundary_rewrites=config.boundary_rewrites,
            n_folds=config.folds,
            batch_size=config.batch_size,
            **self.kw,
        )


def verify(
    base,  # type: ignore[no-untyped-def]
    hardened: HardenedModel,
    defense: NMID,
    obs: Observations,
    config: HardenConfig,
    *,
    data_label: str,
    progress: Progress | None = None,
) -> Verification:
    """The membership suite on the original and on the hardened model, side by side."""

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    suite = _Suite(obs, config, make_folds(obs.membership, config.folds, config.seed))
    report("auditing the original model", 0, 1)
    label_only_before = suite.label_only(base, obs.clean)
    labels_before = suite.labels_only(obs.clean.logits)
    before = suite.scores(obs.clean, usable_features(base)) + label_only_before + labels_before

    report("auditing the hardened model", 0, 1)
    after_features = extract_features(hardened, obs.dataset, batch_size=config.batch_size)
    usable_after = usable_features(hardened)
    scores_after = suite.scores(after_features, usable_after)
    if np.array_equal(after_features.predicted, obs.clean.predicted):
        # The hardened model answers every input, rewrites included, with the original's
        # label (the margin keeps its side), so every label-only attack sees exactly what it
        # saw on the original: its results are reused (the boundary attack's rewrites and
        # forward passes are the costliest part of verification).
        label_only_after, labels_after = label_only_before, labels_before
    else:  # never expected (and refused by harden): measure what the hardened model gives
        label_only_after = suite.label_only(hardened, after_features)
        labels_after = suite.labels_only(after_features.logits)
    after = scores_after + label_only_after + labels_after
    repeat, rewrites = _adaptive(suite, defense, base, usable_after, report)
    return _verification(
        suite,
        data_label,
        before=before,
        after=after,
        scores_after=scores_after,
        labels_after=labels_after,
        repeat=repeat,
        rewrites=rewrites,
        after_features=after_features,
        usable_after=usable_after,
    )


def _adaptive(
    suite: _Suite,
    defense: NMID,
    base: Any,
    usable_after: frozenset[str],
    report: Progress,
) -> tuple[list[Evaluated], list[Evaluated]]:
    """The attacks that query repeatedly: averaging answers to the same function, and over
    semantics-preserving rewrites of it (none when only labels are released)."""
    obs, config = suite.obs, suite.config
    if defense.expose_ is Exposure.LABEL:
        return [], []
    report("adaptive attacks", 0, 2)
    answers = [
        query_margins(defense, base, obs.clean.logits, obs.encodings) for _ in range(config.queries)
    ]
    averaged = released_features(obs.clean, np.mean(answers, axis=0), defense.expose_.value)
    repeat = relabel(suite.scores(averaged, usable_after), f"repeat{config.queries}")
    report("adaptive attacks", 1, 2)
    rewrites: list[Evaluated] = []
    if len(obs.variant_logits):
        variant = query_margins(defense, base, obs.variant_logits, obs.variant_encodings)
        _, rewrites = released_suite(
            obs,
            answers[0],
            variant,
            defense.expose_.value,
            suite.folds,
            config.attack_classifiers,
            rewrites_label=f"rewrites{config.rewrites}",
            **suite.kw,
        )
    report("adaptive attacks", 2, 2)
    return repeat, rewrites


def _targets(
    suite: _Suite, labels_after: list[Evaluated]
) -> tuple[float, float, float | None, float, float | None]:
    """(label-only floor, what labels alone reach, the same over rewrites, the target, the
    target for rewrite averaging): no output defence goes below what labels give away."""
    obs, config = suite.obs, suite.config
    floor = label_only_floor(obs.clean.predicted, obs.clean.labels, obs.membership)
    single_labels = strongest([e for e in labels_after if "/rewrites" not in e.attack])
    rewrite_labels = strongest([e for e in labels_after if "/rewrites" in e.attack])
    labels_only_auc = max(floor, single_labels.score.auc if single_labels else 0.0)
    rewrite_labels_auc = None if rewrite_labels is None else rewrite_labels.score.auc
    target = max(config.target_auc, labels_only_auc + config.floor_margin)
    rewrite_target = (
        None
        if rewrite_labels_auc is None
        else max(config.target_auc, rewrite_labels_auc + config.floor_margin)
    )
    return floor, labels_only_auc, rewrite_labels_auc, target, rewrite_target


def _auc(ev: Evaluated | None) -> float | None:
    return None if ev is None else ev.score.auc


def _verification(
    suite: _Suite,
    data_label: str,
    *,
    before: list[Evaluated],
    after: list[Evaluated],
    scores_after: list[Evaluated],
    labels_after: list[Evaluated],
    repeat: list[Evaluated],
    rewrites: list[Evaluated],
    after_features: Any,
    usable_after: frozenset[str],
) -> Verification:
    obs, config, membership = suite.obs, suite.config, suite.obs.membership
    floor, labels_only_auc, rewrite_labels_auc, target, rewrite_target = _targets(
        suite, labels_after
    )
    best_before = strongest(before)
    label_best = strongest([e for e in after if e.family == "label-only"])
    assert best_before is not None and label_best is not None
    single, best_score = strongest(scores_after), strongest(scores_after + repeat)
    repeat_best, rewrite_best = strongest(repeat), strongest(rewrites)
    met = best_score is None or best_score.score.auc <= target + 1e-12
    if rewrite_best is not None and rewrite_target is not None:
        met = met and rewrite_best.score.auc <= rewrite_target + 1e-12
    after_margin = after_features.logits[:, 1].astype(np.float64) - after_features.logits[:, 0]
    utility = _utility(obs, after_features.predicted, after_margin)
    held_out = next(u for u in utility if u.split == "non-members")
    drop = (
        None
        if held_out.roc_auc_before is None or held_out.roc_auc_after is None
        else held_out.roc_auc_before - held_out.roc_auc_after
    )

    def gain(ev: Evaluated | None) -> float | None:
        return None if ev is None or single is None else ev.score.auc - single.score.auc

    return Verification(
        data=data_label,
        n_members=int(membership.sum()),
        n_nonmembers=int(len(membership) - membership.sum()),
        label_only_floor=floor,
        labels_only_auc=labels_only_auc,
        rewrite_labels_only_auc=rewrite_labels_auc,
        target=target,
        rewrite_target=rewrite_target,
        best_auc_before=best_before.score.auc,
        best_attack_before=_name(best_before),
        best_score_auc_after=_auc(best_score),
        best_score_attack_after=None if best_score is None else _name(best_score),
        excess_over_floor=None if best_score is None else best_score.score.auc - labels_only_auc,
        rewrite_averaging_auc=_auc(rewrite_best),
        rewrite_excess=None
        if rewrite_best is None or rewrite_labels_auc is None
        else rewrite_best.score.auc - rewrite_labels_auc,
        target_met=met,
        label_only_auc=label_best.score.auc,
        single_query_auc=_auc(single),
        repeat_averaging_auc=_auc(repeat_best),
        averaging_gain=gain(repeat_best),
        rewrite_averaging_gain=gain(rewrite_best),
        labels_changed=int((after_features.predicted != obs.clean.predicted).sum()),
        roc_auc_drop=drop,
        rows=tuple(
            _comparison(
                before, after, repeat, rewrites, usable_after, config.queries, config.rewrites
            )
        ),
        utility=tuple(utility),
        attacks_before=tuple(sorted((_row(e) for e in before), key=lambda r: -r.auc)),
        attacks_after=tuple(
            sorted((_row(e) for e in after + repeat + rewrites), key=lambda r: -r.auc)
        ),
        target_auc=config.target_auc,
        floor_margin=config.floor_margin,
    )


def verdict(
    defense: DefenseInfo,
    verification: Verification | None,
    calibration: Calibration | None,
) -> tuple[str, str]:
    setting = (
        f"{defense.bands} confidence bands"
        if defense.bands is not None
        else f"sigma {defense.sigma:.4g}"
    )
    head = (
        f"NMID (expose {defense.expose}, {setting}"
        f"{', calibrated' if defense.sigma_source == 'calibrated' else ''})"
    )
    if verification is None:
        return "unverified", (
            f"{head} was applied but not verified: give --members and --nonmembers to measure "
            "what it protects against."
        )
    v = verification
    status = "holds" if v.target_met else "partial"
    floors = (
        f"The label-only floor is {v.label_only_floor:.3f} (0.5 + half the "
        f"{2 * (v.label_only_floor - 0.5):.1%} accuracy gap between members and non-members)"
        + (
            f"; the same attacks fed labels only reach {v.labels_only_auc:.3f}"
            if v.labels_only_auc > v.label_only_floor + 0.005
            else ""
        )
        + (
            f", and {v.rewrite_labels_only_auc:.3f} from the labels of rewritten functions"
            if v.rewrite_labels_only_auc is not None
            else ""
        )
        + f"; the strongest label-only attack reaches {v.label_only_auc:.3f}. No output "
        "defence goes below these: output noise cannot stop a label-only attacker."
    )
    if v.best_score_auc_after is None:
        text = f"{head} releases labels only, so no score attack applies. {floors}"
    else:
        verb = "holds" if v.target_met else "does not hold"
        text = (
            f"{head} {verb} on {v.data}: the strongest attack that sees scores, repeated-query "
            f"averaging included ({v.best_score_attack_after}), reaches AUC "
            f"{v.best_score_auc_after:.3f} (target {v.target:.3f}) against "
            f"{v.best_auc_before:.3f} before ({v.best_attack_before})"
            + (
                f"; averaging answers over rewrites reaches {v.rewrite_averaging_auc:.3f} "
                f"(target {v.rewrite_target:.3f})"
                if v.rewrite_averaging_auc is not None and v.rewrite_target is not None
                else ""
            )
            + f". {floors}"
        )
    removable = max(v.best_auc_before - v.labels_only_auc, 0.0)
    left = "" if v.excess_over_floor is None else f", {max(v.excess_over_floor, 0.0):.3f} left"
    text += (
        f" Of the leakage, masking and noise can remove the part above the labels-only level "
        f"({removable:.3f} AUC before hardening{left}); the rest "
        f"({v.labels_only_auc - 0.5:+.3f} above chance) only retraining removes: "
        "regularisation, early stopping, more data or DP training. Accuracy and F1 are "
        "unchanged (every prediction is the original model's)."
    )
    if v.roc_auc_drop is not None:
        text += (
            f" The vulnerability score's ROC AUC on non-members moved by {-v.roc_auc_drop:+.3f}."
        )
    if calibration is not None and not calibration.reached:
        text += (
            f" On the calibration split no {'number of bands' if defense.bands else 'sigma'} "
            "tried met the targets with the "
            f"{calibration.slack:g} AUC safety margin calibration asks for, so {setting} "
            "(the least leaky tried) was used"
            + (
                "; on the verification split it meets them all the same."
                if v.target_met
                else "; it does not meet them on the verification split either."
            )
        )
    return status, text
