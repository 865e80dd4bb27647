"""Stage 4: trigger anchoring.

GCG fills every trigger slot, but a backdoor usually needs only a few of the tokens (often one).
Each token is removed in turn (from what is left so far); it stays removed when the loss toward
the target rises by no more than ``beta`` over the full trigger's loss. At least one token always
stays (the last one tried, when every removal is cheap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Anchored:
    trigger: tuple[int, ...]
    loss: float  # the anchored trigger's loss
    full_loss: float  # the full trigger's loss
    removed: tuple[int, ...]  # indices into the full trigger that were dropped
    rises: tuple[float, ...]  # loss rise measured when each token was tried


def anchor(
    trigger: Sequence[int],
    losses: Callable[[np.ndarray], np.ndarray],
    *,
    beta: float = 0.15,
) -> Anchored:
    """Drop every token of ``trigger`` whose removal raises ``losses`` by at most ``beta``.

    ``losses`` maps triggers of one length [C, L] to their loss [C]."""
    full = list(trigger)
    base = float(losses(np.asarray([full]))[0])
    keep = list(range(len(full)))
    rises: list[float] = []
    removed: list[int] = []
    for index in range(len(full)):
        rest = [k for k in keep if k != index]
        if not rest:
            rises.append(float("inf"))
            continue
        loss = float(losses(np.asarray([[full[k] for k in rest]]))[0])
        rise = loss - base
        rises.append(rise)
        if rise <= beta:
            keep = rest
            removed.append(index)
    kept = tuple(full[k] for k in keep)
    final = float(losses(np.asarray([list(kept)]))[0])
    return Anchored(kept, final, base, tuple(removed), tuple(rises))
