"""Shadow-model attack (Shokri et al. 2017): the attacker knows no membership of the target,
only population data. It trains shadow models like the target on halves of that data, learns
an attack classifier on the shadows' outputs for their own members and non-members, and applies
it to the target's outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.attacks.trained import TrainedAttack
from codeaudit.membership.features import FeatureSet

if TYPE_CHECKING:  # shadows train models: torch comes with them, not with this module
    from codeaudit.membership.references import ShadowOutputs


class ShadowAttack(MembershipAttack):
    family = "shadow"

    def __init__(
        self,
        shadows: ShadowOutputs,
        *,
        classifier: str = "gb",
        features: tuple[str, ...] = ("logits", "loss"),
        seed: int = 0,
    ) -> None:
        self.shadows = shadows
        self.classifier = classifier
        self.feature_set = features
        self.seed = seed

    @property
    def name(self) -> str:
        return f"shadow-{self.classifier}"

    @property
    def features(self) -> tuple[str, ...]:
        return self.feature_set

    def fit(self, features: FeatureSet, membership: np.ndarray) -> ShadowAttack:
        """Learns from the shadows only; the target's membership is never read."""
        self.attack_ = TrainedAttack(self.classifier, self.feature_set, seed=self.seed).fit(
            self.shadows.features, self.shadows.membership
        )
        return self

    def score(self, features: FeatureSet) -> np.ndarray:
        if not hasattr(self, "attack_"):
            self.fit(features, np.zeros(len(features)))
        return self.attack_.score(features)
