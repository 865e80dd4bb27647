"""Membership attacks, one class per method, all scoring "higher = more likely a member"."""

from __future__ import annotations

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.attacks.blind import BlindAttack
from codeaudit.membership.attacks.label_only import BoundaryAttack, CorrectnessAttack
from codeaudit.membership.attacks.reference import RMIA, LiRA
from codeaudit.membership.attacks.shadow import ShadowAttack
from codeaudit.membership.attacks.threshold import LABEL_FREE, SIGNALS, ThresholdAttack
from codeaudit.membership.attacks.trained import CLASSIFIERS, TrainedAttack

#: Every attack family, for the registry test and the docs.
ATTACK_CLASSES: dict[str, type[MembershipAttack]] = {
    "threshold": ThresholdAttack,
    "trained": TrainedAttack,
    "shadow": ShadowAttack,
    "lira": LiRA,
    "rmia": RMIA,
    "label-only-correctness": CorrectnessAttack,
    "label-only-boundary": BoundaryAttack,
    "blind": BlindAttack,  # a baseline of the data, reported apart from the attacks
}

__all__ = [
    "ATTACK_CLASSES",
    "CLASSIFIERS",
    "LABEL_FREE",
    "RMIA",
    "SIGNALS",
    "BlindAttack",
    "BoundaryAttack",
    "CorrectnessAttack",
    "LiRA",
    "MembershipAttack",
    "ShadowAttack",
    "ThresholdAttack",
    "TrainedAttack",
]
