"""Threshold attacks: one output, no training (Yeom et al. 2018; Song and Mittal 2021).

A member tends to have a low loss, a high confidence, a low entropy and a low modified entropy;
the unknown-token attack reads the tokenizer instead of the model: a vocabulary built on the
training data knows every token of a member, so a low unknown-token rate marks members.

Label-free variants (:data:`LABEL_FREE`) need no true label, so they run on data the attacker
cannot label: the confidence and the entropy read only the prediction; ``label-free-loss`` and
``label-free-modified-entropy`` take the model's own prediction as a pseudo-label (Song and Mittal
2021 note the loss attack then reduces to the confidence); ``label-free-margin`` is the gap
between the two largest logits, which ranks like the confidence but keeps its order where the
confidence rounds to 1.0 (a memoriser's most confident members would otherwise tie). For a
two-class model they all order samples alike (each is a monotone function of the gap); with
more classes they differ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.features import FeatureSet


def top_margin(f: FeatureSet) -> np.ndarray:
    """The largest logit minus the second largest (label-free)."""
    z = np.sort(f.logits.astype(np.float64), axis=1)
    return z[:, -1] - z[:, -2]


def pseudo_label_loss(f: FeatureSet) -> np.ndarray:
    """Cross-entropy against the predicted label, -log p_max, computed from the logits without
    rounding small values to 0."""
    z = f.logits.astype(np.float64)
    rows, top = np.arange(len(z)), z.argmax(axis=1)
    others = np.exp(z - z[rows, top][:, None])
    others[rows, top] = 0.0  # the top term is exactly 1: log(1 + rest) = log1p(rest)
    return np.log1p(others.sum(axis=1))


def pseudo_label_modified_entropy(f: FeatureSet) -> np.ndarray:
    """Song and Mittal's modified entropy with the predicted label in place of the true one."""
    p = np.clip(f.probabilities, _EPS, 1 - _EPS)
    rows, top = np.arange(len(p)), p.argmax(axis=1)
    p_top = p[rows, top]
    other = -(p * np.log(1 - p)).sum(axis=1) + p_top * np.log(1 - p_top)
    return -(1 - p_top) * np.log(p_top) + other


_EPS = 1e-12

SIGNALS: dict[str, tuple[tuple[str, ...], Callable[[FeatureSet], np.ndarray]]] = {
    "loss": (("loss",), lambda f: -f.loss),
    "confidence": (("confidence",), lambda f: f.confidence),
    "entropy": (("confidence",), lambda f: -f.entropy),
    "modified-entropy": (("loss", "confidence"), lambda f: -f.modified_entropy),
    "unknown-tokens": (("tokenizer",), lambda f: -f.unk_rate),
    "label-free-loss": (("confidence",), lambda f: -pseudo_label_loss(f)),
    "label-free-modified-entropy": (
        ("confidence",),
        lambda f: -pseudo_label_modified_entropy(f),
    ),
    "label-free-margin": (("logits",), top_margin),
}

#: The signals that need no true label (the prediction alone, or it as a pseudo-label).
LABEL_FREE: frozenset[str] = frozenset(
    {"confidence", "entropy", "label-free-loss", "label-free-modified-entropy", "label-free-margin"}
)


class ThresholdAttack(MembershipAttack):
    family = "threshold"

    def __init__(self, signal: str) -> None:
        if signal not in SIGNALS:
            raise ValueError(f"unknown threshold signal {signal!r}")
        self.signal = signal

    @property
    def name(self) -> str:
        return f"threshold-{self.signal}"

    @property
    def features(self) -> tuple[str, ...]:
        return SIGNALS[self.signal][0]

    @property
    def label_free(self) -> bool:
        """True when the attack reads no true label."""
        return self.signal in LABEL_FREE

    def score(self, features: FeatureSet) -> np.ndarray:
        return np.asarray(SIGNALS[self.signal][1](features), dtype=np.float64)
