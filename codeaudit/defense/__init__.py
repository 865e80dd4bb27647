"""Defences for VP models: NMID (noise-based membership-inference defence), ``codeaudit harden``.

The hardened model itself, the estimator that makes it and its keyed noise are a model format
(:mod:`codeaudit.models.nmid`, :mod:`codeaudit.models.noise`), because every command that loads a
hardened checkpoint must get what it releases; this package chooses sigma, proves what it buys
and exports it (``harden``, ``calibrate``, ``evaluate``, ``export``).

**What NMID is.** An inference-time wrapper, no retraining: the hardened model answers with the
predicted label and, depending on ``--expose``, a noised confidence (``top1``) or noised
probabilities (``probs``); never raw logits, the embedding or anything token-level. Gaussian
noise of scale sigma is added to the logits before the softmax, keyed and deterministic (the
same input always gets the same noise, see :mod:`codeaudit.models.noise`) and argmax-
preserving (the label is never changed, so accuracy and F1 are exactly the original model's).

**Threat model.** The attacker can query the deployed model as often as they like, with any
code, and sees only what it releases; they may know the true labels of the functions they ask
about, the architecture, the training recipe and NMID itself, sigma included. Out of scope: an
attacker holding the hardened checkpoint or the exported file (both contain the original
weights and the key: a stolen model is a white-box model, and noise protects nothing), and
side channels such as timing. Deploy the export behind an API; do not hand it to the people
it protects against.

**What it cannot do.** Output noise cannot stop an attacker who sees only labels: a model that
is right on more of its training functions than of unseen ones leaks membership through
correctness alone (the label-only floor, 0.5 + half the accuracy gap), and through how many
semantics-preserving rewrites it takes to flip a label. Averaging answers over rewrites of a
function gets fresh noise (different token ids) and recovers part of the signal; a larger sigma
is the only remedy. Only retraining (regularisation, early stopping, more data, DP training)
lowers the floor.

Python API::

    from codeaudit.defense import load_hardened
    model = load_hardened("hardened.pt")          # a HardenedModel
    answer = model.query(["int f(char *s) { char b[8]; strcpy(b, s); return 0; }"])
    answer.label, answer.confidence
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codeaudit.models.nmid import NMID, Exposure, HardenedModel, Released
    from codeaudit.models.noise import keyed_hash, keyed_normals, noised_margin, release

#: Every defence ``codeaudit harden`` can apply, by the name a checkpoint records.
DEFENSES = ("nmid",)

__all__ = [
    "DEFENSES",
    "NMID",
    "Exposure",
    "HardenedModel",
    "Released",
    "keyed_hash",
    "keyed_normals",
    "load_hardened",
    "noised_margin",
    "release",
]


def load_hardened(path: str, *, device: str = "cpu") -> HardenedModel:
    """Load a hardened checkpoint (weights-only); refuses a model that is not hardened."""
    from codeaudit.errors import CheckpointError
    from codeaudit.models.checkpoint import load_model

    loaded = load_model(path, device=device)
    from codeaudit.models.nmid import HardenedModel

    if not isinstance(loaded.model, HardenedModel):
        raise CheckpointError(f"{path}: not a hardened model (run codeaudit harden first)")
    return loaded.model


def __getattr__(name: str) -> Any:
    """The hardened-model names, imported on first use (so that this package and its result
    types import without torch)."""
    if name in ("NMID", "Exposure", "HardenedModel", "Released"):
        from codeaudit.models import nmid

        return getattr(nmid, name)
    if name in ("keyed_hash", "keyed_normals", "noised_margin", "release"):
        from codeaudit.models import noise

        return getattr(noise, name)
    raise AttributeError(name)
