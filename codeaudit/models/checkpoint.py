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
caller passes ``trust=True`` (``--trust-checkpoint``). Two foreign formats load too: a Hugging
Face model directory, and a bare state dict of published fine-tuning code (CodeXGLUE,
EliBadCode ``model.bin``) on the base model named by ``base`` (:mod:`codeaudit.models.foreign`).

A transformer's tokenizer state records its input format (``tokens`` or ``raw``, see
:mod:`codeaudit.models.input_format`); a checkpoint whose model reads ``raw`` text is written as
format version 2, which codeaudit versions that would feed it code tokens refuse to read.

A checkpoint whose ``defense`` is set loads as the hardened model it describes
(:class:`codeaudit.models.nmid.HardenedModel`); a defence this version cannot read is refused.
Writes go through :func:`codeaudit.io.atomic_write`.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeaudit.errors import CheckpointError, CodeAuditError, UsageError
from codeaudit.io import atomic_write, check_input_file, sha256_file
from codeaudit.models.input_format import MAX_LEN_CAP

FORMAT = "codeaudit-checkpoint"
FORMAT_VERSION = 2  # 2: the model reads raw text (version 1 readers only knew code tokens)
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class LoadedModel:
    """A model with where it came from."""

    model: Any  # VPModel (kept untyped here so importing this module stays light)
    path: str
    sha256: str
    source: str  # "codeaudit" | "huggingface" | a bare state dict's layout ("codexglue", ...)
    metadata: dict[str, Any] = field(default_factory=dict)
    trusted_pickle: bool = False  # loaded with --trust-checkpoint through full unpickling
    defense: dict[str, Any] | None = None
    base: str | None = None  # the base model a bare state dict was loaded onto (--base)
    base_sha256: str | None = None  # of the base files used (config and tokenizer)

    @classmethod
    def in_memory(
        cls, model: Any, *, name: str = "<memory>", metadata: dict[str, Any] | None = None
    ) -> LoadedModel:
        """A model that was never written (trained or changed in this process), to run checks
        on as it is. Its "sha256" is a digest of its weights (names, dtypes, shapes, values), so
        that caches keyed by it never confuse two models."""
        import hashlib

        import torch

        digest = hashlib.sha256()
        for key, tensor in model.module.state_dict().items():
            value = tensor.detach().cpu().contiguous()
            digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        return cls(model, name, digest.hexdigest(), "memory", metadata=dict(metadata or {}))

    @property
    def identity(self) -> str:
        """What fixes the model's outputs, for cache keys: the file's hash, and for a foreign
        model (whose input format and base come from the user) those too."""
        if self.source in ("codeaudit", "memory"):
            return self.sha256
        import hashlib

        text = f"{self.sha256}|{self.base_sha256}|{self.model.tokenizer.input_format}"
        return hashlib.sha256(text.encode()).hexdigest()

    def artifacts(self) -> tuple[Any, ...]:
        """The report's artifacts for this model: the model, and its base when it has one."""
        from codeaudit.report.model import Artifact

        model = Artifact("model", self.path, self.sha256)
        if self.base is None:
            return (model,)
        return (model, Artifact("base", self.base, self.base_sha256))

    def info(self) -> Any:
        """How the model was loaded and what it reads (:class:`CheckpointInfo`)."""
        from codeaudit.models.privacy import privacy_of
        from codeaudit.report.model import CheckpointInfo

        return CheckpointInfo(
            self.source,
            self.trusted_pickle,
            input_format=self.model.tokenizer.input_format,
            max_len=int(self.model.max_len),
            outputs=int(self.model.n_outputs),
            privacy=privacy_of(self.metadata, self.path),
        )


def checkpoint_payload(model: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict written to disk for a :class:`~codeaudit.models.base.VPModel`. A hardened model
    (``codeaudit.defense``) always writes its defence, so it can never be saved unprotected."""
    record = model.defense_record() if hasattr(model, "defense_record") else None
    reads_tokens = model.tokenizer.input_format == "tokens"
    return {
        "format": FORMAT,
        "format_version": 1 if reads_tokens else FORMAT_VERSION,
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


def checkpoint_bytes(model: Any, metadata: dict[str, Any] | None = None) -> bytes:
    """The checkpoint file's bytes (what :func:`save_checkpoint` writes)."""
    import torch

    buffer = io.BytesIO()
    torch.save(checkpoint_payload(model, metadata), buffer)
    return buffer.getvalue()


def save_checkpoint(
    model: Any, path: str | Path, *, metadata: dict[str, Any] | None = None, force: bool = False
) -> Path:
    """Write a checkpoint atomically; an existing file is only replaced with ``force``."""
    data = checkpoint_bytes(model, metadata)
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

    from codeaudit.models.safety import check_materialised, check_zip_records

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
    check_materialised(payload, path.stat().st_size, str(path))
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
    if arch != "transformer" and max_len > MAX_LEN_CAP:  # a transformer: its positions bound it
        raise CheckpointError(
            f"{path}: checkpoint max_len {max_len} is more than the {MAX_LEN_CAP} ids codeaudit "
            "reads per function (refused)"
        )
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
    base: str | None = None,
    input_format: str | None = None,
    max_len: int | None = None,
) -> LoadedModel:
    """Load a codeaudit checkpoint, a Hugging Face model directory, or a bare state dict of
    published fine-tuning code on its ``base`` model.

    ``input_format``: the text the model reads (None: what the checkpoint records; ``raw`` for
    a Hugging Face directory; the published default of a bare state dict's layout). A codeaudit
    checkpoint's recorded format cannot be overridden. ``max_len``: ids per function, at most
    what the model's positions allow (None: the model's own)."""
    from codeaudit.models.device import resolve_device

    p = check_input_file(path, "model", error=CheckpointError, allow_dir=True)
    target = resolve_device(device or "cpu")
    if p.is_dir():
        loaded = _load_directory(p, base, input_format, require_head)
    else:
        loaded = _load_file(p, trust, base, input_format)
    model = loaded.model
    if max_len is not None:
        limit = model.max_positions
        if limit is not None and max_len > limit:
            raise UsageError(
                f"--max-len {max_len}: {p} reads at most {limit} ids (its position embeddings)"
            )
        if max_len > MAX_LEN_CAP:
            raise UsageError(f"--max-len {max_len}: codeaudit reads at most {MAX_LEN_CAP} ids")
        model.max_len = int(max_len)
    if loaded.defense is not None:  # a hardened model: every command gets what is shipped
        from codeaudit.models.nmid import apply_defense

        model = apply_defense(model, loaded.defense, str(p))
    loaded.model = model.to(target)
    return loaded


def load_with(path: str | Path, options: Any, *, device: str | None = None) -> LoadedModel:
    """:func:`load_model` with a :class:`~codeaudit.models.options.LoadOptions`."""
    return load_model(
        path,
        trust=options.trust_checkpoint,
        device=device,
        base=options.base,
        input_format=options.input_format,
        max_len=options.max_len,
    )


def _load_directory(
    p: Path, base: str | None, input_format: str | None, require_head: bool
) -> LoadedModel:
    from codeaudit.models.safety import directory_sha256
    from codeaudit.models.tokenizer import TOKENIZER_FILES
    from codeaudit.models.transformer import TransformerModel

    directory_sha = directory_sha256(p)  # checks every file the loader reads, before it does
    tokenizer_dir = None
    base_sha = None
    if base is not None:
        if any((p / name).is_file() for name in TOKENIZER_FILES):
            raise UsageError(
                f"--base {base}: {p} is a Hugging Face directory with its own tokenizer; --base "
                "is for a bare model.bin (or a directory saved without a tokenizer)"
            )
        from codeaudit.models.foreign import base_files, resolve_base

        tokenizer_dir = resolve_base(base)
        base_sha = _files_sha256(base_files(tokenizer_dir))
    model = TransformerModel.from_directory(
        p,
        require_head=require_head,
        input_format=input_format or "raw",
        tokenizer_dir=tokenizer_dir,
    )
    return LoadedModel(model, str(p), directory_sha, "huggingface", base=base, base_sha256=base_sha)


def _load_file(p: Path, trust: bool, base: str | None, input_format: str | None) -> LoadedModel:
    payload, unpickled = read_payload(p, trust=trust)
    if (
        payload.get("format") != FORMAT
        and payload
        and all(hasattr(v, "shape") for v in payload.values())
    ):
        return _load_bare_state(p, payload, base, input_format, unpickled)
    if base is not None:
        raise UsageError(
            f"--base {base}: {p} is a codeaudit checkpoint, which holds its own configuration "
            "and tokenizer; --base is for a bare model.bin"
        )
    model = model_from_payload(payload, p)
    recorded = model.tokenizer.input_format
    if input_format is not None and input_format != recorded:
        raise UsageError(
            f"--input-format {input_format}: {p} records that its model reads {recorded!r} "
            "text, and another format would feed it text it never saw"
        )
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    from codeaudit.models.privacy import privacy_of

    privacy_of(metadata, str(p))  # a guarantee that cannot be one is refused, not shown
    defense = payload.get("defense")
    return LoadedModel(
        model,
        str(p),
        sha256_file(p),
        "codeaudit",
        metadata=metadata,
        trusted_pickle=unpickled,
        defense=defense,
    )


def _load_bare_state(
    p: Path,
    state: dict[str, Any],
    base: str | None,
    input_format: str | None,
    unpickled: bool,
) -> LoadedModel:
    from codeaudit.models.foreign import base_files, detect_layout, strip_data_parallel
    from codeaudit.models.transformer import TransformerModel

    if base is None:
        layout, _ = detect_layout(strip_data_parallel(state), str(p))
        raise CheckpointError(
            f"{p}: a bare state dict ({layout.title} layout) holds no configuration or "
            "tokenizer: pass --base DIR (or a cached Hugging Face id such as "
            "microsoft/codebert-base), the base model it was fine-tuned from"
        )
    model, layout_name, directory = TransformerModel.from_bare_state(
        state, base, where=str(p), input_format=input_format
    )
    return LoadedModel(
        model,
        str(p),
        sha256_file(p),
        layout_name,
        trusted_pickle=unpickled,
        base=base,
        base_sha256=_files_sha256(base_files(directory)),
    )


def _files_sha256(files: list[Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for item in files:
        digest.update(item.name.encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(item)))
    return digest.hexdigest()
