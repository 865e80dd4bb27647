"""The attack interface. Every attack turns model outputs into a membership score per sample
(higher = more likely a member), in the scikit-learn estimator shape: hyper-parameters in
``__init__``, ``fit(features, membership) -> self`` (a no-op for attacks that learn nothing from
the target's membership), learned state in attributes ending in ``_``, then ``score``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from codeaudit.membership.features import FeatureSet


class MembershipAttack(ABC):
    family: ClassVar[str]  # "threshold", "trained", "shadow", "reference", "label-only", "blind"
    #: True when fit() learns from labelled target members and non-members, so it must only
    #: ever be scored on held-out folds.
    supervised: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """A stable name for reports, e.g. ``threshold-loss`` or ``trained-gb``."""

    @property
    @abstractmethod
    def features(self) -> tuple[str, ...]:
        """Which outputs the attack reads (for the report's feature column)."""

    def fit(self, features: FeatureSet, membership: np.ndarray) -> MembershipAttack:
        return self

    @abstractmethod
    def score(self, features: FeatureSet) -> np.ndarray:
        """Membership scores for the samples in ``features`` (higher = member)."""
