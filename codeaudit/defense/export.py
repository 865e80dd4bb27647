"""Writing a hardened model: the codeaudit checkpoint, and what every export shares.

The checkpoint is the parent's (same weights, tokenizer, config, metadata) with ``defense``
set to the NMID record (sigma, exposure, key, hash and noise scheme, the parent's sha256 and
how sigma was chosen); codeaudit loads it as the hardened model.

The exports run with plain ``torch`` (no codeaudit), one module per format:
``--export torch.export`` (:mod:`codeaudit.defense.export_pt2`, an ExportedProgram ``.pt2``)
and ``--export torchscript`` (:mod:`codeaudit.defense.export_torchscript`, deprecated by
torch), listed in :data:`codeaudit.defense.exporters.EXPORTERS`. Every export carries the same
metadata (:func:`export_metadata`) in an extra file ``codeaudit.json`` and is checked against
the codeaudit wrapper (:func:`compare_with_wrapper`) before anything is written. Tokenisation
(tree-sitter lexing and the model's vocabulary or BPE) is not part of an export: the metadata
carries the tokenizer state and the input contract, and ``codeaudit.models`` encodes code
exactly as the model was trained.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codeaudit.defense.export_torchscript import (
    FORMAT as EXPORT_FORMAT,
)
from codeaudit.defense.export_torchscript import (
    META_FILE,
    build_torchscript,
    load_torchscript,
    torchscript_bytes,
)
from codeaudit.defense.exporters import EXPORTERS, exporter, exporter_of_file
from codeaudit.errors import HardenError
from codeaudit.io import atomic_write
from codeaudit.models import noise
from codeaudit.models.checkpoint import checkpoint_payload
from codeaudit.models.nmid import HardenedModel
from codeaudit.models.tokenizer import Encoding

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMATS",
    "EXPORT_VERSION",
    "META_FILE",
    "build_torchscript",
    "checkpoint_bytes",
    "compare_with_wrapper",
    "default_export_path",
    "export_metadata",
    "load_export_metadata",
    "released_numpy",
    "save_hardened",
    "torchscript_bytes",
    "write_bytes",
]

EXPORT_VERSION = 1
EXPORT_FORMATS = tuple(EXPORTERS)


def checkpoint_bytes(model: HardenedModel, metadata: dict[str, Any]) -> bytes:
    """The hardened checkpoint's bytes (refused if the defence would be missing)."""
    payload = checkpoint_payload(model, metadata)
    if not payload.get("defense"):
        raise HardenError("refusing to write a hardened model without its defence")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_hardened(
    model: HardenedModel, path: str | Path, *, metadata: dict[str, Any], force: bool
) -> Path:
    """Write the hardened checkpoint atomically (never over an existing file without force)."""
    data = checkpoint_bytes(model, metadata)
    return atomic_write(path, lambda handle: handle.write(data), force=force)


def export_metadata(
    model: HardenedModel, parent_sha256: str, fmt: str = "torchscript"
) -> dict[str, Any]:
    """The ``codeaudit.json`` an export of format ``fmt`` carries (no key: only its
    fingerprint)."""
    from codeaudit import __version__

    chosen = exporter(fmt)
    return {
        "format": chosen.format,
        "format_version": EXPORT_VERSION,
        "load": chosen.load_hint,
        **({"deprecated": chosen.deprecation} if chosen.deprecation else {}),
        "codeaudit_version": __version__,
        "defense": {
            "kind": "nmid",
            "sigma": model.sigma,
            "expose": model.expose,
            "keyed": True,
            "key_fingerprint": model.defense.fingerprint(),
            "outputs": model.defense.outputs_,
            "noise": model.defense.mechanism,
            **({"bands": model.bands} if model.bands is not None else {}),
        },
        "parent_sha256": parent_sha256,
        "arch": model.arch,
        "labels": list(model.labels),
        "max_len": model.max_len,
        "default_lang": model.default_lang,
        "tokenizer": model.tokenizer.to_state(),
        "input": (
            "forward(input_ids, attention_mask): int64 [B, T] each, right-padded, mask 1 for "
            "real tokens; ids from codeaudit's encoder for this tokenizer, at most max_len, "
            f"from {model.tokenizer.input_format!r} text (tokenizer.input_format); "
            f"{chosen.input_note(model)}"
        ),
        "output": {
            "label": "int64 [B]",
            **({"confidence": "float32 [B]"} if model.expose == "top1" else {}),
            **({"probs": "float32 [B, 2]"} if model.expose == "probs" else {}),
        },
    }


def compare_with_wrapper(
    data: bytes,
    model: HardenedModel,
    encodings: Sequence[Encoding],
    *,
    batch_size: int = 32,
    load: Callable[[bytes], Callable[..., dict[str, torch.Tensor]]] = load_torchscript,
) -> tuple[int, float]:
    """Load the exported bytes afresh (``load``: the format's loader) and compare its answers
    with the wrapper's, batch by batch (same batches, so the same numbers are expected).
    Returns (samples, max |diff|); refuses a different set of outputs, any different label
    and a difference above 1e-6."""
    loaded = load(data)
    device = model.device
    model.to("cpu")
    worst = 0.0
    try:
        with torch.inference_mode():
            for start in range(0, len(encodings), batch_size):
                batch = model.collate(list(encodings[start : start + batch_size]))
                ours = noise.release(model.margin(batch), model.expose)
                theirs = loaded(batch.input_ids, batch.attention_mask)
                if sorted(ours) != sorted(theirs):
                    raise HardenError("the exported model releases different outputs")
                if not torch.equal(ours["label"], theirs["label"]):
                    raise HardenError("the exported model predicts different labels")
                for key in ours:
                    diff = float((ours[key].double() - theirs[key].double()).abs().max())
                    if not math.isfinite(diff):
                        raise HardenError(f"the exported model's {key} is not a finite number")
                    worst = max(worst, diff)
    finally:
        model.to(device)
    if worst > 1e-6:
        raise HardenError(f"the exported model differs from the wrapper by {worst:.2e}")
    return len(encodings), worst


def write_bytes(path: str | Path, data: bytes, *, force: bool) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), force=force)


def default_export_path(output: str, fmt: str) -> str:
    """Where ``--export fmt`` writes without ``--export-output``: beside ``-o``."""
    return exporter(fmt).default_path(output)


def load_export_metadata(path: str | Path) -> dict[str, Any]:
    """The ``codeaudit.json`` an exported file (either format) carries."""
    return exporter_of_file(path).read_metadata(path)


def released_numpy(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in out.items()}
