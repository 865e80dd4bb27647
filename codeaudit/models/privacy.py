"""The differential-privacy record a checkpoint's metadata holds when it was trained with
``codeaudit train --dp`` (``metadata["privacy"]``, written by :mod:`codeaudit.train.private`),
read back and checked. The file is untrusted: a record that is not one this version writes (a
negative or non-finite epsilon, a delta outside (0, 1), a wrong type) is refused with a
one-line :class:`CheckpointError` rather than shown as a guarantee."""

from __future__ import annotations

import math
from typing import Any

from codeaudit.errors import CheckpointError
from codeaudit.report.model import TrainingPrivacy

MECHANISMS = ("dp-sgd",)
ACCOUNTANTS = ("prv", "rdp", "gdp")
COVERS = ("weights", "weights+vocabulary")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def privacy_of(metadata: Any, where: str) -> TrainingPrivacy | None:
    """The recorded guarantee; None when the metadata records none."""
    record = metadata.get("privacy") if isinstance(metadata, dict) else None
    if record is None:
        return None

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{where}: invalid training privacy record: {what}")

    if not isinstance(record, dict):
        raise bad(f"a {type(record).__name__}, not a mapping")
    mechanism = record.get("mechanism")
    if mechanism not in MECHANISMS:
        raise bad(f"mechanism {str(mechanism)[:40]!r} (known: {', '.join(MECHANISMS)})")
    accountant = record.get("accountant")
    if accountant not in ACCOUNTANTS:
        raise bad(f"accountant {str(accountant)[:40]!r} (known: {', '.join(ACCOUNTANTS)})")
    values: dict[str, float] = {}
    rules = {
        "epsilon": (lambda v: v >= 0, "a finite number >= 0"),
        "delta": (lambda v: 0 < v < 1, "a number in (0, 1)"),
        "noise_multiplier": (lambda v: v > 0, "a finite number > 0"),
        "max_grad_norm": (lambda v: v > 0, "a finite number > 0"),
        "sample_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    }
    for key, (ok, wanted) in rules.items():
        value = _number(record.get(key))
        if value is None or not math.isfinite(value) or not ok(value):
            raise bad(f"{key} {str(record.get(key))[:40]} (must be {wanted})")
        values[key] = value
    steps = record.get("steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise bad(f"steps {str(steps)[:40]} (must be a whole number >= 0)")
    target = record.get("target_epsilon")
    if target is not None:
        number = _number(target)
        if number is None or not math.isfinite(number) or number <= 0:
            raise bad(f"target_epsilon {str(target)[:40]} (must be a finite number > 0)")
        target = number
    covers = record.get("covers", "weights")
    if covers not in COVERS:
        raise bad(f"covers {str(covers)[:40]!r} (known: {', '.join(COVERS)})")
    library = record.get("library")
    if library is not None and not isinstance(library, str):
        raise bad("library is not a string")
    return TrainingPrivacy(
        mechanism=str(mechanism),
        epsilon=values["epsilon"],
        delta=values["delta"],
        noise_multiplier=values["noise_multiplier"],
        max_grad_norm=values["max_grad_norm"],
        accountant=str(accountant),
        sample_rate=values["sample_rate"],
        steps=steps,
        target_epsilon=target,
        library=library[:80] if library is not None else None,
        covers=covers,
    )
