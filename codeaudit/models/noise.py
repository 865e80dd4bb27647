"""Keyed, deterministic, argmax-preserving Gaussian noise on a binary model's logits.

Everything here is plain integer and float64 tensor arithmetic, written so that
``torch.jit.script`` compiles it unchanged: the same functions run inside codeaudit's hardened
model and inside the exported TorchScript file, so the two give bit-identical answers for the
same batch.

**The keyed hash.** The noise of an input is a function of the token ids the model reads (after
tokenisation and truncation, padding excluded) and of a 128-bit secret key (four 32-bit words).
Every position contributes ``fmix32(fmix32(id ^ k0) ^ (pos * 0x9E3779B9 + k1))`` (``fmix32`` is
MurmurHash3's 32-bit finaliser); the contributions are summed modulo 2**32 and mixed again with
``k2``, the length and ``k3``. All values stay below 2**50 (32-bit lanes, products split into
16-bit halves), so no int64 operation ever overflows and the result cannot depend on how a
platform treats signed overflow. It is a fast keyed mixer, not a cryptographic PRF: it makes
the noise unpredictable to someone who only sees answers, and is chosen because it runs as
tensor operations in TorchScript (see the threat model in ``codeaudit/defense/__init__.py``).

**The Gaussian draw.** Per class ``c`` two 32-bit words derived from the input's hash, the class
index and the key give two uniforms in (0, 1) (``(w + 0.5) / 2**32``) and one standard normal by
Box-Muller, in float64.

**Argmax preservation (binary).** With noise ``e0, e1`` on the logits ``z0, z1`` the softmax
depends only on the noised margin ``r = (z1 - z0) + sigma * (e1 - e0)``. A one-logit (sigmoid)
model, whose logits codeaudit reads as ``[0, z]``, has one logit to noise: ``r = z + sigma * e1``.
The clean prediction is ``z1 > z0`` (a tie goes to class 0, as ``argmax`` resolves it). The
released margin is ``r`` reflected onto the clean prediction's side: ``max(|r|, 1e-4)`` when
the clean model says 1, ``-|r|`` when it says 0 (a released tie, margin 0, again reads as class
0). The floor keeps ``p1 > p0`` strict in float32. So the predicted label never changes, for
any sigma.

**Confidence bands (``--noise banded``).** The other mechanism keeps the score's *ranking*
information at a chosen resolution and hides each input's confidence within it. The clean
margin's magnitude ``|z1 - z0|`` falls into one of ``k`` bands cut at ``k - 1`` increasing edges
(quantiles of held-out functions' margins, chosen at harden time); the released probability of
the predicted class is ``0.5 + 0.49 * (band + u) / k`` with ``u`` a keyed uniform in (0, 1) drawn
from the same keyed hash. So a higher band always releases a higher confidence (the ordering
across bands is kept), everything within a band is replaced by keyed noise (the same input
always gets the same value), the released confidence lies in (0.5, 0.99), and the label is the
clean prediction's (the margin keeps its side, at least 1e-4 for class 1). ``k = 1`` releases
the label and pure noise: the label-only release.
"""

from __future__ import annotations

import math

import torch

# TorchScript cannot read module-level constants, so the scripted functions below spell these
# values out; the names document them (and tests check the two agree).
MASK32 = 0xFFFFFFFF
TWO32 = 4294967296.0
MIN_MARGIN = 1e-4  # smallest released margin on the positive side: keeps p1 > p0 in float32
LABEL_MARGIN = 30.0  # pseudo-margin standing for a bare label (label exposure)
BAND_SPAN = 0.49  # banded release: confidences in (0.5, 0.5 + BAND_SPAN)


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for x in [0, 2**32) and a 32-bit constant, without int64 overflow."""
    lo = c & 0xFFFF
    hi = (c >> 16) & 0xFFFF
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & 0xFFFFFFFF


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's finaliser on 32-bit values held in int64 (all shifts are logical)."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def keyed_hash(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, key: torch.Tensor
) -> torch.Tensor:
    """[B] int64 in [0, 2**32): a keyed hash of each row's real tokens (mask 1), in order."""
    ids = input_ids.to(torch.int64) & 0xFFFFFFFF
    mask = (attention_mask != 0).to(torch.int64)
    positions = torch.arange(ids.shape[1], dtype=torch.int64, device=ids.device).unsqueeze(0)
    step = (_mul32(positions, 0x9E3779B9) + key[1]) & 0xFFFFFFFF
    per_token = _fmix32(_fmix32(ids ^ key[0]) ^ step)
    total = (per_token * mask).sum(dim=1) & 0xFFFFFFFF
    length = mask.sum(dim=1) & 0xFFFFFFFF
    h = _fmix32(total ^ key[2])
    return _fmix32(h ^ _fmix32(length ^ key[3]))


def keyed_normals(seed: torch.Tensor, key: torch.Tensor, classes: int) -> torch.Tensor:
    """[B, classes] float64 standard normals, a deterministic function of each row's seed."""
    c = torch.arange(classes, dtype=torch.int64, device=seed.device).unsqueeze(0)
    base = seed.unsqueeze(1)
    w1 = _fmix32(base ^ _fmix32((_mul32(2 * c + 1, 0x632BE5AB) ^ key[1]) & 0xFFFFFFFF))
    w2 = _fmix32(base ^ _fmix32((_mul32(2 * c + 2, 0x632BE5AB) ^ key[3]) & 0xFFFFFFFF))
    u1 = (w1.to(torch.float64) + 0.5) / 4294967296.0
    u2 = (w2.to(torch.float64) + 0.5) / 4294967296.0
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)


def keyed_uniforms(seed: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """[B] float64 uniforms in (0, 1), a deterministic function of each row's seed (a word of
    its own: not one of the words :func:`keyed_normals` draws from)."""
    word = _fmix32(seed ^ _fmix32(key[2] ^ 0xB5AD4ECF))
    return (word.to(torch.float64) + 0.5) / 4294967296.0


def banded_margin(
    logits: torch.Tensor, uniforms: torch.Tensor, edges: torch.Tensor
) -> torch.Tensor:
    """[B] float64: the released margin of the banded mechanism (see the module docstring).
    ``edges``: [k - 1] increasing float64 cuts on ``|z1 - z0|`` (empty: one band)."""
    z = logits.to(torch.float64)
    positive = logits[:, 1] > logits[:, 0]
    magnitude = torch.abs(z[:, 1] - z[:, 0])
    cuts = edges.to(torch.float64).to(magnitude.device)
    band = (magnitude.unsqueeze(1) >= cuts.unsqueeze(0)).to(torch.float64).sum(dim=1)
    bands = float(cuts.shape[0] + 1)
    confidence = 0.5 + 0.49 * (band + uniforms.to(magnitude.device)) / bands
    r = torch.log(confidence) - torch.log1p(-confidence)
    return torch.where(positive, torch.clamp(r, min=1e-4), -r)


def noised_margin(
    logits: torch.Tensor, normals: torch.Tensor, sigma: float, outputs: int = 2
) -> torch.Tensor:
    """[B] float64: the released margin (see the module docstring), argmax-preserving.
    ``outputs``: logits the model computes (1: a sigmoid model, noised on its one logit)."""
    z = logits.to(torch.float64)
    positive = logits[:, 1] > logits[:, 0]
    draw = normals[:, 1] if outputs == 1 else normals[:, 1] - normals[:, 0]
    r = (z[:, 1] - z[:, 0]) + sigma * draw
    magnitude = torch.abs(r)
    return torch.where(positive, torch.clamp(magnitude, min=1e-4), -magnitude)


def release(margin: torch.Tensor, expose: str) -> dict[str, torch.Tensor]:
    """What a caller of the hardened model receives for released margins ``margin``.

    ``label`` always (int64); ``top1`` adds ``confidence`` (the larger probability, float32);
    ``probs`` adds ``probs`` ([B, 2] float32). Nothing else: no logits, no embedding.
    """
    label = (margin > 0).to(torch.int64)
    out: dict[str, torch.Tensor] = {"label": label}
    if expose == "label":
        return out
    p1 = torch.sigmoid(margin)
    p0 = torch.sigmoid(-margin)
    if expose == "top1":
        out["confidence"] = torch.maximum(p0, p1).to(torch.float32)
    else:
        out["probs"] = torch.stack([p0, p1], dim=1).to(torch.float32)
    return out


def pseudo_logits(margin: torch.Tensor, expose: str) -> torch.Tensor:
    """[B, 2] float32 logits whose softmax is exactly what is released (for codeaudit's own
    pipeline: predict, the membership audit). For ``label`` exposure a fixed margin of 30 stands
    for the bare label, so no score information passes through."""
    if expose == "label":
        margin = torch.where(
            margin > 0,
            torch.full_like(margin, 30.0),
            torch.full_like(margin, -30.0),
        )
    zeros = torch.zeros_like(margin)
    return torch.stack([zeros, margin], dim=1).to(torch.float32)


def keyed_margin(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    key: torch.Tensor,
    sigma: float,
    outputs: int = 2,
) -> torch.Tensor:
    """The released margin of the keyed defence: hash the ids, draw, noise, reflect."""
    normals = keyed_normals(keyed_hash(input_ids, attention_mask, key), key, 2)
    return noised_margin(logits, normals.to(logits.device), sigma, outputs)


def keyed_band_margin(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    key: torch.Tensor,
    edges: torch.Tensor,
) -> torch.Tensor:
    """The released margin of the banded defence: hash the ids, draw a uniform, band."""
    uniforms = keyed_uniforms(keyed_hash(input_ids, attention_mask, key), key)
    return banded_margin(logits, uniforms.to(logits.device), edges)


def key_words(key_hex: str) -> torch.Tensor:
    """A 32-hex-digit key as four 32-bit words (int64 tensor)."""
    value = int(key_hex, 16)
    return torch.tensor([(value >> (32 * i)) & 0xFFFFFFFF for i in range(4)], dtype=torch.int64)


def new_key() -> str:
    """A fresh 128-bit key from the operating system's CSPRNG, as 32 hex digits."""
    import secrets

    return f"{secrets.randbits(128):032x}"
