"""Shadow-model attack (Shokri et al. 2017): the attacker knows no membership of the target,
only population data. It trains shadow models like the target on halves of that data, learns
an attack classifier on the shadows' outputs for their own members and non-members, and applies
it to the target's outputs.

What decides the attack at low false-positive rates is how it ranks the outputs the target is
surest of. A tree attack model on raw logits or the loss (the earlier default: gradient boosting
on logits and loss) puts every near-zero loss in one leaf, so the members a memoriser is surest
of tie with one another and with the most confident non-members, and the true-positive rate at
1% FPR collapses (Big-Vul BiGRU, 4 shadows: 0.155 against 0.247 for the plain loss threshold;
docs/membership-vs-art.md). The attack therefore reads

* the logit margin phi = z_y - z_other (LiRA's logit-scaled confidence): monotone in the loss but
  exact where the loss underflows, and unbounded, so the top of the ranking keeps its order;
* the true label (one-hot in ART's attack; here the label and phi x label), which lets the attack
  model calibrate each class apart (per-class attack models in one);
* optionally the logits;

and chooses among a few attack models on these inputs *on the shadows alone*: each candidate is
trained on all shadows but one and scored on the one left out (leave-one-shadow-out; with a
single shadow, 3 stratified folds of its outputs), and the candidate with the highest pooled
held-out TPR at 1% FPR (then AUC) is refitted on every shadow. The target's membership is never
read, so the attack stays unsupervised with respect to the target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.attacks.trained import classifier_scores, fit_classifier
from codeaudit.membership.features import FeatureSet

if TYPE_CHECKING:  # shadows train models: torch comes with them, not with this module
    from codeaudit.membership.references import ShadowOutputs


def _margin(f: FeatureSet) -> np.ndarray:
    return np.asarray(f.logit_scaled_confidence, dtype=np.float64)


def _with_label(f: FeatureSet) -> np.ndarray:
    phi, y = _margin(f), f.labels.astype(np.float64)
    return np.c_[phi, y, phi * y]


#: Attack-model inputs: name -> (the outputs it reads, for the report; the matrix).
SHADOW_INPUTS: dict[str, tuple[tuple[str, ...], Callable[[FeatureSet], np.ndarray]]] = {
    "margin": (("logit-margin",), lambda f: _margin(f)[:, None]),
    "margin+label": (("logit-margin", "label"), _with_label),
    "margin+label+logits": (
        ("logit-margin", "label", "logits"),
        lambda f: np.c_[_with_label(f), f.block("logits")],
    ),
    "logits+loss": (("logits", "loss"), lambda f: np.c_[f.block("logits"), f.block("loss")]),
}

#: The attack models the shadows choose from: (classifier, inputs).
SHADOW_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("logreg", "margin"),
    ("logreg", "margin+label"),
    ("gb", "margin+label"),
    ("mlp", "margin+label"),
    ("gb", "margin+label+logits"),
    ("gb", "logits+loss"),  # the former default: the choice never does worse on the shadows
)


class _Fitted:
    """One attack model with its input scaling, fitted on shadow outputs."""

    def __init__(self, classifier: str, inputs: str, seed: int) -> None:
        self.classifier, self.inputs, self.seed = classifier, inputs, seed

    def fit(self, f: FeatureSet, membership: np.ndarray) -> _Fitted:
        from sklearn.preprocessing import StandardScaler

        x = SHADOW_INPUTS[self.inputs][1](f)
        self.scaler_ = StandardScaler().fit(x)
        self.model_: Any = fit_classifier(
            self.classifier, self.seed, self.scaler_.transform(x), membership
        )
        return self

    def score(self, f: FeatureSet) -> np.ndarray:
        x = self.scaler_.transform(SHADOW_INPUTS[self.inputs][1](f))
        return classifier_scores(self.model_, x)


def _held_out_splits(shadows: ShadowOutputs, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave one shadow out; with one shadow (or none recorded), 3 stratified folds."""
    groups = shadows.shadow_of
    if groups is not None and len(np.unique(groups)) >= 2:
        return [
            (np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in np.unique(groups)
        ]
    from codeaudit.membership.evaluate import make_folds

    return make_folds(shadows.membership, 3, seed)


class ShadowAttack(MembershipAttack):
    family = "shadow"

    def __init__(
        self,
        shadows: ShadowOutputs,
        *,
        candidates: tuple[tuple[str, str], ...] = SHADOW_CANDIDATES,
        seed: int = 0,
    ) -> None:
        unknown = [inputs for _, inputs in candidates if inputs not in SHADOW_INPUTS]
        if not candidates or unknown:
            raise ValueError(f"shadow attack: unknown inputs {', '.join(unknown) or '(none)'}")
        self.shadows = shadows
        self.candidates = tuple(candidates)
        self.seed = seed

    @property
    def name(self) -> str:
        return f"shadow-{self.choice_[0]}" if hasattr(self, "choice_") else "shadow"

    @property
    def features(self) -> tuple[str, ...]:
        inputs = self.choice_[1] if hasattr(self, "choice_") else self.candidates[0][1]
        return SHADOW_INPUTS[inputs][0]

    def select(self) -> dict[tuple[str, str], tuple[float, float]]:
        """Each candidate's (pooled held-out TPR at 1% FPR, mean held-out AUC) on the shadows."""
        from codeaudit.membership.metrics import tpr_at_fpr
        from codeaudit.metrics import rank_auc

        f, y = self.shadows.features, self.shadows.membership
        splits = _held_out_splits(self.shadows, self.seed)
        found = {}
        for candidate in self.candidates:
            pooled = np.zeros(len(y))
            aucs = []
            for train, test in splits:
                model = _Fitted(*candidate, self.seed).fit(f.subset(train), y[train])
                pooled[test] = model.score(f.subset(test))
                aucs.append(rank_auc(y[test], pooled[test]) or 0.5)
            tpr = tpr_at_fpr(y, pooled, 0.01) if len(y) - y.sum() >= 100 else None
            found[candidate] = (-1.0 if tpr is None else float(tpr), float(np.mean(aucs)))
        return found

    def fit(self, features: FeatureSet, membership: np.ndarray) -> ShadowAttack:
        """Learns from the shadows only; the target's membership is never read."""
        self.held_out_ = self.select() if len(self.candidates) > 1 else {}
        self.choice_ = (
            max(self.candidates, key=lambda c: self.held_out_[c])  # first of equals
            if self.held_out_
            else self.candidates[0]
        )
        self.attack_ = _Fitted(*self.choice_, self.seed).fit(
            self.shadows.features, self.shadows.membership
        )
        return self

    def score(self, features: FeatureSet) -> np.ndarray:
        if not hasattr(self, "attack_"):
            self.fit(features, np.zeros(len(features)))
        return self.attack_.score(features)
