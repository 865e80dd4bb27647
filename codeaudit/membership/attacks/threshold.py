"""Threshold attacks: one output, no training (Yeom et al. 2018; Song and Mittal 2021).

A member tends to have a low loss, a high confidence, a low entropy and a low modified entropy;
the unknown-token attack reads the tokenizer instead of the model: a vocabulary built on the
training data knows every token of a member, so a low unknown-token rate marks members.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.features import FeatureSet

SIGNALS: dict[str, tuple[tuple[str, ...], Callable[[FeatureSet], np.ndarray]]] = {
    "loss": (("loss",), lambda f: -f.loss),
    "confidence": (("confidence",), lambda f: f.confidence),
    "entropy": (("confidence",), lambda f: -f.entropy),
    "modified-entropy": (("loss", "confidence"), lambda f: -f.modified_entropy),
    "unknown-tokens": (("tokenizer",), lambda f: -f.unk_rate),
}


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

    def score(self, features: FeatureSet) -> np.ndarray:
        return np.asarray(SIGNALS[self.signal][1](features), dtype=np.float64)
