"""Writing a hardened model: the codeaudit checkpoint and a self-contained TorchScript file.

The checkpoint is the parent's (same weights, tokenizer, config, metadata) with ``defense``
set to the NMID record (sigma, exposure, key, hash and noise scheme, the parent's sha256 and
how sigma was chosen); codeaudit loads it as the hardened model.

The TorchScript file runs with plain ``torch`` (no codeaudit)::

    m = torch.jit.load("hardened.torchscript.pt")
    out = m(input_ids, attention_mask)   # int64 [B, T] each; 1 marks a real token
    out["label"], out["confidence"]      # top1; "probs" with --expose probs

Its forward is the model (traced from token ids, so any batch size and length work) followed
by the same scripted keyed-noise and masking code the codeaudit wrapper runs; nothing else
(logits, embeddings) can be asked of it. Tokenisation (tree-sitter lexing and the model's
vocabulary or BPE) is not part of TorchScript: the file carries the tokenizer state and the
input contract in an extra file ``codeaudit.json`` (``torch.jit.load(path, _extra_files=...)``),
and ``codeaudit.models`` encodes code exactly as the model was trained.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from codeaudit.errors import HardenError
from codeaudit.io import atomic_write
from codeaudit.models import noise
from codeaudit.models.base import Batch, VPModel
from codeaudit.models.checkpoint import checkpoint_payload
from codeaudit.models.nmid import HardenedModel, NMIDHead
from codeaudit.models.tokenizer import Encoding

EXPORT_FORMAT = "codeaudit-nmid-torchscript"
EXPORT_VERSION = 1
EXPORT_FORMATS = ("torchscript",)
META_FILE = "codeaudit.json"


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


class _Logits(nn.Module):
    """The adapter's forward from token ids, logits only (what gets traced)."""

    def __init__(self, adapter: VPModel) -> None:
        super().__init__()
        self.adapter = adapter
        self.inner = adapter.module  # registers the weights

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch = Batch(input_ids, attention_mask, attention_mask.sum(dim=1))
        return self.adapter.forward(batch).logits


class HardenedExport(nn.Module):
    """Model, then keyed noise and masking: the only thing the exported file can compute."""

    def __init__(self, base: nn.Module, head: NMIDHead) -> None:
        super().__init__()
        self.base = base
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # answers only: no autograd graph (and the inference kernels)
            logits = self.base(input_ids, attention_mask)
            return self.head(logits, input_ids, attention_mask)


def _examples(model: VPModel) -> Batch:
    """A padded two-row batch of real encodings to trace with (unequal lengths, so the trace
    records the masked path)."""
    long = "\n".join(
        ["int trace_example(int n, char *buf) {", "  int total = 0;"]
        + [f"  if (n > {i}) {{ total += buf[{i}] * {i + 1}; }}" for i in range(12)]
        + ["  return total;", "}"]
    )
    short = "int f(int a) { return a + 1; }"
    encodings = [model.encode_code(long), model.encode_code(short)]
    if min(len(e.ids) for e in encodings) < 1 or len(encodings[0]) == len(encodings[1]):
        raise HardenError("cannot build a tracing example for this tokenizer")
    return model.collate(encodings)


def build_torchscript(model: HardenedModel) -> torch.jit.ScriptModule:
    """Trace the parent model from token ids and script the defence around it (on CPU)."""
    if not model.defense.keyed:
        raise HardenError("only keyed NMID can be exported")
    device = model.device
    model.to("cpu")
    try:
        example = _examples(model.base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings: checked below
            traced = torch.jit.trace(
                _Logits(model.base).eval(),
                (example.input_ids, example.attention_mask),
                check_trace=False,
            )
            head = NMIDHead(
                noise.key_words(model.defense.key_),
                model.sigma,
                model.expose,
                model.defense.outputs_,
            )
            scripted = torch.jit.script(HardenedExport(traced, head).eval())
    finally:
        model.to(device)
    return scripted


def export_metadata(model: HardenedModel, parent_sha256: str) -> dict[str, Any]:
    from codeaudit import __version__

    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "codeaudit_version": __version__,
        "defense": {
            "kind": "nmid",
            "sigma": model.sigma,
            "expose": model.expose,
            "keyed": True,
            "key_fingerprint": model.defense.fingerprint(),
            "outputs": model.defense.outputs_,
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
            f"from {model.tokenizer.input_format!r} text (tokenizer.input_format)"
        ),
        "output": {
            "label": "int64 [B]",
            **({"confidence": "float32 [B]"} if model.expose == "top1" else {}),
            **({"probs": "float32 [B, 2]"} if model.expose == "probs" else {}),
        },
    }


def torchscript_bytes(module: torch.jit.ScriptModule, meta: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer, _extra_files={META_FILE: json.dumps(meta, sort_keys=True)})
    return buffer.getvalue()


def compare_with_wrapper(
    data: bytes,
    model: HardenedModel,
    encodings: Sequence[Encoding],
    *,
    batch_size: int = 32,
) -> tuple[int, float]:
    """Load the exported bytes afresh and compare its answers with the wrapper's, batch by
    batch (same batches, so the same numbers are expected). Returns (samples, max |diff|)."""
    loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
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
                    diff = (ours[key].double() - theirs[key].double()).abs().max().item()
                    worst = max(worst, float(diff))
    finally:
        model.to(device)
    if worst > 1e-6:
        raise HardenError(f"the exported model differs from the wrapper by {worst:.2e}")
    return len(encodings), worst


def write_bytes(path: str | Path, data: bytes, *, force: bool) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), force=force)


def default_export_path(output: str, fmt: str) -> str:
    p = Path(output)
    return str(p.with_name(f"{p.stem}.{fmt}{p.suffix or '.pt'}"))


def load_export_metadata(path: str | Path) -> dict[str, Any]:
    """The ``codeaudit.json`` an exported file carries."""
    extra = {META_FILE: ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[META_FILE])


def released_numpy(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in out.items()}
