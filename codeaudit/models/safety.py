"""Checks that keep an untrusted model file from costing more than it holds.

``weights_only=True`` stops a checkpoint from running code, but a hostile file can still ask for
unbounded work: a 3 MB zip whose deflated record inflates to gigabytes, or a configuration that
declares a million layers or a hidden size of 2**30 next to a few kilobytes of weights (codeaudit
would hang building the modules, or allocate until the machine kills it). The rules here bound
what loading a model allocates by what its files actually hold:

* a torch zip checkpoint must store its records uncompressed (``torch.save`` never compresses),
  so no record is larger than the file;
* every configuration value that counts layers is at most the number of tensors in the weights;
* the model a configuration describes is first built on the ``meta`` device (no memory), and its
  parameters must fit the weights: exactly, key by key and shape by shape, for a codeaudit
  checkpoint; in total for a Hugging Face directory (whose key names transformers maps itself);
* what the weights *materialise* is bounded by the file, not what they store: a tensor saved as
  a stride-0 (expanded) view of one number stores 4 bytes and becomes gigabytes once the model
  copies it. Every tensor counts ``numel * element size`` (at least 4 bytes an element: the
  float32 the model computes in), and the sum may be at most
  :data:`MATERIALISED_PER_FILE_BYTE` times the file's size (plus :data:`MATERIALISED_SLACK`);
  a safetensors header's declared sizes must match its offsets and fit the file;
* every weight is a floating-point tensor where the model expects one (no int, bool or complex
  values) and is finite after the conversion the model applies (float64 1e300 is inf in
  float32);
* the files of a Hugging Face directory that the loader reads are regular files inside the
  directory (a symlink may not leave it, ``/proc`` files and devices are refused), not sparse,
  and at most :data:`MAX_SIDE_FILE_BYTES` for the configuration and tokenizer files.

Every refusal is a one-line :class:`~codeaudit.errors.CheckpointError`.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from codeaudit.errors import CheckpointError

# A Hugging Face directory may describe a little more than its files hold (a classification head
# that fine-tuning adds to a base encoder); beyond this many extra parameters, or this share of
# the weights, the configuration does not describe these weights.
HEAD_ALLOWANCE = 10_000_000
HEAD_ALLOWANCE_SHARE = 0.25


# Bytes a checkpoint's tensors may materialise per byte of the file: float16/bfloat16 weights
# double in float32, and 4 leaves room for int8-style packing; a stride-0 view is millions.
MATERIALISED_PER_FILE_BYTE = 4
MATERIALISED_SLACK = 1 << 20  # small files: a few parameters more than the pickle's size
# Configuration, tokenizer and index files of a Hugging Face directory (tokenizer.json of large
# multilingual models is ~20 MB).
MAX_SIDE_FILE_BYTES = 256 << 20
# A file whose allocated blocks are less than this share of its size is sparse (holes read as
# zeros at no disk cost: a 20 GB file in a few KB); checked above SPARSE_MIN_BYTES.
SPARSE_MIN_SHARE = 0.5
SPARSE_MIN_BYTES = 64 << 20


def describes_more_than_held(described: int, held: int) -> bool:
    """Whether a configuration's parameter count is more than its weights plus a head."""
    return described > held + max(HEAD_ALLOWANCE, int(HEAD_ALLOWANCE_SHARE * held))


WEIGHT_FILES = (  # in the order transformers prefers them
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


# Files besides the weights that transformers reads from a model directory (config, tokenizer).
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "chat_template.jinja",
    "merges.txt",
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def loader_files(directory: Path) -> list[Path]:
    """The files of a Hugging Face directory that loading it reads (side files and weights), each
    checked with :func:`check_regular_file`; sorted by name. Nothing else in the directory is
    read or hashed."""
    found: dict[str, Path] = {}
    for name in SIDE_FILES:
        path = directory / name
        if path.is_symlink() or path.exists():
            check_regular_file(path, directory, limit=MAX_SIDE_FILE_BYTES)
            found[name] = path
    for name in WEIGHT_FILES:
        path = directory / name
        if not (path.is_symlink() or path.exists()):
            continue
        json_file = name.endswith(".json")
        check_regular_file(path, directory, limit=MAX_SIDE_FILE_BYTES if json_file else None)
        found[name] = path
        if json_file:
            for shard in _shards(path, directory):
                check_regular_file(shard, directory)
                found[shard.name] = shard
    return [found[name] for name in sorted(found)]


def _shards(index_path: Path, directory: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        shards = sorted({str(s) for s in index["weight_map"].values()})
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        raise CheckpointError(f"{index_path}: not a valid weight index") from None
    out = []
    for shard in shards:
        path = directory / shard
        if "/" in shard or "\\" in shard or shard in ("", ".", "..") or not path.exists():
            raise CheckpointError(f"{index_path}: shard {shard[:80]!r} not found")
        out.append(path)
    return out


def directory_sha256(directory: Path) -> str:
    """The sha256 of a Hugging Face directory: of the files loading it reads (name and content),
    never of anything else it holds (a link to ``/proc``, a sparse file nobody reads)."""
    import hashlib

    from codeaudit.io import sha256_file

    digest = hashlib.sha256()
    for path in loader_files(directory):
        digest.update(path.name.encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def check_zip_records(path: Path) -> None:
    """Refuse a torch zip checkpoint that could inflate: compressed or oversized records."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{path}: truncated or corrupted checkpoint") from None
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{path}: record {info.filename!r} is compressed; torch.save never compresses, "
                "and a compressed record can inflate without bound (refused)"
            )
        if info.file_size > size:
            raise CheckpointError(
                f"{path}: record {info.filename!r} claims {info.file_size} bytes, more than the "
                "file holds (truncated or corrupted checkpoint)"
            )


def _layer_counts(config: Mapping[str, Any]) -> Iterable[tuple[str, int]]:
    for key, value in config.items():
        if isinstance(value, int) and not isinstance(value, bool) and "layer" in key.lower():
            yield key, value


def check_layer_counts(config: Mapping[str, Any], n_tensors: int, where: str) -> None:
    """A configuration that counts more layers than the weights hold tensors is not theirs (and
    building it would take unbounded time before any shape could be compared)."""
    for key, value in _layer_counts(config):
        if value < 0 or value > max(n_tensors, 1):
            raise CheckpointError(
                f"{where}: configuration {key}={value} does not fit weights holding "
                f"{n_tensors} tensors"
            )


def meta_build(build: Callable[[], Any], where: str) -> Any:
    """Build a module on the meta device (shapes only, no memory): configuration errors become
    CheckpointErrors before anything is allocated.

    Only torch's own ``torch.device("meta")`` context is used: no library function is replaced,
    so nothing else in the process (transformers' initialisation, a later model build) can see a
    difference. Builders that can skip random initialisation should (``RNNClassifier`` does):
    shapes need no values."""
    import torch

    try:
        with torch.device("meta"):
            return build()
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"{where}: invalid model configuration: {first_line(exc)}") from None


def check_state(
    expected: Mapping[str, Any], state_dict: Mapping[str, Any], arch: str, where: str = ""
) -> None:
    """Keys and shapes of a state dict against a module's (``expected``: name -> tensor or
    shape), before any weight is copied or allocated."""
    import torch

    prefix = f"{where}: " if where else ""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{prefix}weights do not match the {arch} architecture ({detail})")
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{prefix}weight {name!r} is not a tensor")
        want = tuple(getattr(expected[name], "shape", expected[name]))
        if tuple(tensor.shape) != want:
            raise CheckpointError(
                f"{prefix}weight {name!r} has shape {tuple(tensor.shape)}, the {arch} "
                f"configuration expects {want} (tokenizer and model do not match?)"
            )
        check_values(name, tensor, getattr(expected[name], "dtype", None), prefix)


def check_values(name: str, tensor: Any, dtype: Any, prefix: str = "") -> None:
    """A weight the model keeps in floating-point ``dtype`` (None: float32) must be a real
    floating-point tensor (int, bool and complex values are refused: copying them in converts
    silently) whose values stay finite once converted to ``dtype``."""
    import torch

    target = dtype if dtype is not None else torch.float32
    if not target.is_floating_point:
        return  # an integer buffer (position ids): not a weight
    if not tensor.is_floating_point():
        raise CheckpointError(
            f"{prefix}weight {name!r} has dtype {str(tensor.dtype).replace('torch.', '')}, "
            "a floating-point weight is expected"
        )
    if not bool(torch.isfinite(tensor.to(target)).all()):
        raise CheckpointError(
            f"{prefix}weight {name!r} contains NaN or infinite values (as "
            f"{str(target).replace('torch.', '')})"
        )


def check_module_values(module: Any, where: str) -> None:
    """Every floating-point parameter and buffer of a loaded module is finite (what a loader we
    do not control, transformers, copied in), and no parameter is complex or integral."""
    prefix = f"{where}: " if where else ""
    for name, param in module.named_parameters():
        check_values(
            name, param.detach(), param.dtype if param.is_floating_point() else None, prefix
        )
        if not param.is_floating_point():
            raise CheckpointError(
                f"{prefix}weight {name!r} has dtype {str(param.dtype).replace('torch.', '')}, "
                "a floating-point weight is expected"
            )


def materialised_bytes(value: Any, depth: int = 0) -> int:
    """Bytes the tensors in a loaded object take once used (``numel * max(element size, 4)``),
    whatever storage they share: a stride-0 view counts every element it shows."""
    import torch

    if depth > 64:
        return 0
    if isinstance(value, torch.Tensor):
        return int(value.numel()) * max(int(value.element_size()), 4)
    if isinstance(value, dict):
        return sum(materialised_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(materialised_bytes(v, depth + 1) for v in value)
    return 0


def check_materialised(value: Any, file_bytes: int, where: str) -> None:
    """Refuse tensors that materialise more than :data:`MATERIALISED_PER_FILE_BYTE` times the
    file they came from (``file_bytes``)."""
    used = materialised_bytes(value)
    bound = MATERIALISED_PER_FILE_BYTE * file_bytes + MATERIALISED_SLACK
    if used > bound:
        raise CheckpointError(
            f"{where}: the weights materialise {used:,} bytes from a file of {file_bytes:,} "
            f"(more than {MATERIALISED_PER_FILE_BYTE} per file byte: expanded or aliased "
            "tensors, refused)"
        )


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


def _containment_root(directory: Path) -> Path:
    """Where a directory's links may point: the directory, or for a snapshot of the Hugging Face
    cache (``models--org--name/snapshots/<rev>``, whose files link to ``../../blobs``) the
    model's cache folder."""
    parent = directory.parent
    if parent.name == "snapshots" and (parent.parent / "blobs").is_dir():
        return parent.parent
    return directory


def check_regular_file(path: Path, directory: Path, *, limit: int | None = None) -> Path:
    """``path`` (inside ``directory``) as a regular file the loader may read: a symlink may not
    resolve outside the directory, ``/proc`` files, devices and FIFOs are refused, and so are
    sparse files and files over ``limit`` bytes."""
    import os
    import stat

    try:
        resolved = path.resolve(strict=True)
        root = _containment_root(directory).resolve(strict=True)
    except (OSError, RuntimeError):
        raise CheckpointError(f"{path}: cannot be resolved (a dangling or looping link)") from None
    if resolved != root and root not in resolved.parents:
        raise CheckpointError(
            f"{path}: a link to {_short(str(resolved))}, outside the model directory (refused)"
        )
    try:
        info = os.stat(resolved)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path}: not a regular file (a device, FIFO or socket), refused")
    if limit is not None and info.st_size > limit:
        raise CheckpointError(f"{path}: {info.st_size:,} bytes, more than {limit:,} (refused)")
    blocks = getattr(info, "st_blocks", None)
    if (
        blocks is not None
        and info.st_size > SPARSE_MIN_BYTES
        and blocks * 512 < SPARSE_MIN_SHARE * info.st_size
    ):
        raise CheckpointError(
            f"{path}: a sparse file ({info.st_size:,} bytes, {blocks * 512:,} on disk), refused"
        )
    return resolved


def check_safetensors_header(path: Path) -> None:
    """A safetensors header whose tensors' declared sizes match their offsets, within the file."""
    import struct

    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, MAX_SIDE_FILE_BYTES):
                raise ValueError("header larger than the file")
            header = json.loads(handle.read(length))
    except (struct.error, ValueError, OSError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: unreadable safetensors file (bad header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: unreadable safetensors file (bad header)")
    sizes = {
        "F64": 8,
        "F32": 4,
        "F16": 2,
        "BF16": 2,
        "I64": 8,
        "I32": 4,
        "I16": 2,
        "I8": 1,
        "U8": 1,
        "BOOL": 1,
        "U16": 2,
        "U32": 4,
        "U64": 8,
        "F8_E4M3": 1,
        "F8_E5M2": 1,
    }
    data = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (begin, end) = entry["shape"], entry["data_offsets"]
            item = sizes.get(entry["dtype"], 0)
            numel = math.prod(int(d) for d in shape)
            ok = all(isinstance(d, int) and d >= 0 for d in shape) and 0 <= begin <= end <= data
        except (KeyError, TypeError, ValueError):
            ok, item, numel, begin, end = False, 0, 0, 0, 0
        if not ok or (item and numel * item != end - begin):
            raise CheckpointError(
                f"{path}: unreadable safetensors file: tensor {str(name)[:60]!r} declares a size "
                "its file does not hold"
            )


def parameter_count(module: Any) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())


def _safetensors_inventory(path: Path) -> tuple[int, int]:
    from safetensors import safe_open

    check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            numel = sum(math.prod(handle.get_slice(k).get_shape()) for k in keys)
    except Exception as exc:  # safetensors raises its own SafetensorError (no public base)
        raise CheckpointError(f"{path}: unreadable safetensors file: {first_line(exc)}") from None
    return len(keys), numel


def _torch_inventory(path: Path) -> tuple[int, int]:
    import pickle

    import torch

    check_zip_records(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: the weights need arbitrary pickled objects, which could run code "
            "on load (convert them to model.safetensors)"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable weights: {first_line(exc)}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: weights are not a state dict")
    check_materialised(state, path.stat().st_size, str(path))
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    return len(tensors), sum(t.numel() for t in tensors)


def weights_inventory(directory: Path) -> tuple[int, int]:
    """(tensors, parameters) held by a Hugging Face directory's weight files, read from the
    safetensors headers (or a weights-only load of pytorch_model.bin); every file is checked."""
    files: list[Path] = []
    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        check_regular_file(path, directory, limit=MAX_SIDE_FILE_BYTES if ".json" in name else None)
        if name.endswith(".index.json"):
            try:
                index = json.loads(path.read_text(encoding="utf-8"))
                shards = sorted(set(index["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError, OSError):
                raise CheckpointError(f"{path}: not a valid weight index") from None
            for shard in shards:
                shard_path = (directory / str(shard)).resolve()
                if shard_path.parent != directory.resolve() or not shard_path.is_file():
                    raise CheckpointError(f"{path}: shard {str(shard)[:80]!r} not found")
                files.append(check_regular_file(directory / str(shard), directory))
        else:
            files.append(path)
        break  # the first present kind is what transformers loads
    tensors = numel = 0
    for path in files:
        if path.name.endswith(".safetensors"):
            t, n = _safetensors_inventory(path)
        else:
            t, n = _torch_inventory(path)
        tensors, numel = tensors + t, numel + n
    return tensors, numel
