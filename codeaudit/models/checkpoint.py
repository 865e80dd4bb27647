"""The codeaudit checkpoint: one ``.pt`` file that ``torch.load(..., weights_only=True)`` reads.

Layout (a plain dict; only strings, numbers, bools, None, lists, dicts and tensors)::

    {
      "format": "codeaudit-checkpoint",
      "format_version": 1,
      "arch": "lstm" | "bigru" | "transformer",
      "model_config": {...},          # hyper-parameters (transformer: its HF config as JSON text)
      "tokenizer": {"kind": "vocab", "itos": [...]} | {"kind": "hf", "tokenizer_json": "..."},
      "labels": ["not-vulnerable", "vulnerable"],
      "max_len": 512,                 # ids per sample, special tokens included
      "default_lang": "c",            # language of samples without a "lang" field
      "state_dict": {name: tensor},
      "metadata": {...},              # codeaudit version, data sha256, seed, sizes, metrics
      "defense": null,                # hardened models: the NMID record (codeaudit.defense)
    }

Loading never unpickles arbitrary objects: a file that needs them (a pickled module, a numpy
scalar, code smuggled in ``__reduce__``) is refused with :class:`CheckpointError` unless the
caller passes ``trust=True`` (``--trust-checkpoint``). A Hugging Face model directory is loaded
too. A checkpoint whose ``defense`` is set loads as the hardened model it describes
(:class:`codeaudit.defense.nmid.HardenedModel`); a defence this version cannot read is refused.
Writes go through :func:`codeaudit.io.atomic_write`.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeaudit.errors import CheckpointError, CodeAuditError
from codeaudit.io import atomic_write, check_input_file, sha256_file

FORMAT = "codeaudit-checkpoint"
FORMAT_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class LoadedModel:
    """A model with where it came from."""

    model: Any  # VPModel (kept untyped here so importing this module stays light)
    path: str
    sha256: str
    source: str  # "codeaudit" | "huggingface"
    metadata: dict[str, Any] = field(default_factory=dict)
    trusted_pickle: bool = False  # loaded with --trust-checkpoint through full unpickling
    defense: dict[str, Any] | None = None


def checkpoint_payload(model: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict written to disk for a :class:`~codeaudit.models.base.VPModel`. A hardened model
    (``codeaudit.defense``) always writes its defence, so it can never be saved unprotected."""
    record = model.defense_record() if hasattr(model, "defense_record") else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "model_config": model.model_config(),
        "tokenizer": model.tokenizer.to_state(),
        "labels": list(model.labels),
        "max_len": int(model.max_len),
        "default_lang": model.default_lang,
        "state_dict": {
            k: v.detach().cpu().contiguous() for k, v in model.module.state_dict().items()
        },
        "metadata": dict(metadata or {}),
        "defense": record,
    }


def save_checkpoint(
    model: Any, path: str | Path, *, metadata: dict[str, Any] | None = None, force: bool = False
) -> Path:
    """Write a checkpoint atomically; an existing file is only replaced with ``force``."""
    import torch

    payload = checkpoint_payload(model, metadata)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    return atomic_write(path, lambda handle: handle.write(data), force=force)


def _why_refused(message: str, head: bytes) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(
        r"safe_globals\(\[([\w.]+)\]\)", message
    )
    if found:
        return f"needs arbitrary pickled objects ({found.group(1)}), which could run code on load"
    if head.startswith(b"\x80"):
        return "is a raw pickle file, which could run code on load"
    return ""


def read_payload(path: Path, *, trust: bool = False) -> tuple[dict[str, Any], bool]:
    """Load the raw dict; returns (payload, needed_full_unpickling)."""
    import pickle

    import torch

    from codeaudit.models.safety import check_zip_records

    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if head.startswith(_ZIP_MAGIC):
        check_zip_records(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols it then refuses
            payload = torch.load(path, map_location="cpu", weights_only=True)
        unpickled = False
    except pickle.UnpicklingError as exc:
        reason = _why_refused(str(exc), head)
        if not reason:
            if head.startswith(_ZIP_MAGIC):
                raise CheckpointError(f"{path}: corrupted checkpoint (cannot be read)") from None
            raise CheckpointError(f"{path}: not a PyTorch checkpoint") from None
        if not trust:
            raise CheckpointError(
                f"{path}: refused: the checkpoint {reason}; pass --trust-checkpoint only if you "
                "trust whoever made this file"
            ) from None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as inner:  # arbitrary pickles fail in arbitrary ways
            raise CheckpointError(f"{path}: cannot be loaded: {inner}") from None
        unpickled = True
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        if head.startswith(_ZIP_MAGIC):
            raise CheckpointError(f"{path}: truncated or corrupted checkpoint") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first[:120]})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path}: not a codeaudit checkpoint (holds a {type(payload).__name__}, not a dict)"
        )
    return payload, unpickled


def _require(payload: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    if key not in payload:
        raise CheckpointError(f"{path}: checkpoint has no {key!r}")
    value = payload[key]
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: checkpoint field {key!r} has the wrong type")
    return value


def model_from_payload(payload: dict[str, Any], path: Path) -> Any:
    from codeaudit.models.registry import adapter_class
    from codeaudit.models.tokenizer import tokenizer_from_state

    if payload.get("format") != FORMAT:
        if payload and all(hasattr(v, "shape") for v in payload.values()):
            raise CheckpointError(
                f"{path}: a bare state dict, not a codeaudit checkpoint (no architecture, "
                "tokenizer or config); train with codeaudit or load a Hugging Face directory"
            )
        raise CheckpointError(f"{path}: not a codeaudit checkpoint (no 'format' marker)")
    version = payload.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this codeaudit "
            f"understands ({FORMAT_VERSION}); upgrade codeaudit"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: invalid checkpoint format version {str(version)[:40]!r}")
    arch = _require(payload, "arch", str, path)
    max_len = _require(payload, "max_len", int, path)
    if max_len < 1:
        raise CheckpointError(f"{path}: checkpoint max_len {max_len} is not a positive length")
    labels = _require(payload, "labels", list, path)
    if len(labels) != 2 or not all(isinstance(label, str) for label in labels):
        raise CheckpointError(
            f"{path}: checkpoint labels must be two names (a binary model), got {len(labels)} "
            "values"
        )
    try:
        cls = adapter_class(arch)
        tokenizer = tokenizer_from_state(payload.get("tokenizer"))
        return cls.from_parts(
            _require(payload, "model_config", dict, path),
            tokenizer,
            _require(payload, "state_dict", dict, path),
            max_len=max_len,
            default_lang=_require(payload, "default_lang", str, path),
            labels=labels,
        )
    except CodeAuditError as exc:  # ModelError, LanguageError too: always say which file
        if str(exc).startswith(str(path)):
            raise
        raise CheckpointError(f"{path}: {exc}") from None


def load_model(
    path: str | Path,
    *,
    trust: bool = False,
    device: str | None = None,
    require_head: bool = True,
) -> LoadedModel:
    """Load a codeaudit checkpoint or a Hugging Face model directory."""
    from codeaudit.models.device import resolve_device

    p = check_input_file(path, "model", error=CheckpointError, allow_dir=True)
    target = resolve_device(device or "cpu")
    if p.is_dir():
        from codeaudit.models.transformer import TransformerModel

        model = TransformerModel.from_directory(p, require_head=require_head)
        return LoadedModel(model.to(target), str(p), sha256_file(p), "huggingface")
    payload, unpickled = read_payload(p, trust=trust)
    model = model_from_payload(payload, p)
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    defense = payload.get("defense")
    if defense is not None:  # a hardened model: every command gets what is shipped
        from codeaudit.defense.nmid import apply_defense

        model = apply_defense(model, defense, str(p))
    return LoadedModel(
        model.to(target),
        str(p),
        sha256_file(p),
        "codeaudit",
        metadata=metadata,
        trusted_pickle=unpickled,
        defense=defense,
    )
