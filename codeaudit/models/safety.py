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
  checkpoint; in total for a Hugging Face directory (whose key names transformers maps itself).

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


def describes_more_than_held(described: int, held: int) -> bool:
    """Whether a configuration's parameter count is more than its weights plus a head."""
    return described > held + max(HEAD_ALLOWANCE, int(HEAD_ALLOWANCE_SHARE * held))


WEIGHT_FILES = (  # in the order transformers prefers them
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


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
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{prefix}weight {name!r} contains NaN or infinite values")


def parameter_count(module: Any) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())


def _safetensors_inventory(path: Path) -> tuple[int, int]:
    from safetensors import safe_open

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
                files.append(shard_path)
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
