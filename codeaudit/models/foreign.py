"""Bare state dicts written by published vulnerability-detection code, loaded onto a base model.

Fine-tuning scripts often save only ``torch.save(model.state_dict(), "model.bin")`` of their own
wrapper module, with no configuration or tokenizer: those come from the base model the user
fine-tuned (``--base``: a local directory, or a Hugging Face model id found in the local cache).
The layout is recognised from the keys (a leading ``module.`` from ``DataParallel`` is dropped):

* ``codexglue``: CodeXGLUE defect detection. A wrapper whose ``encoder`` is a transformers
  sequence classifier with one output: ``encoder.roberta.*`` and ``encoder.classifier.*``; the
  score is ``sigmoid(logit)``, vulnerable when above 0.5. It reads whitespace-collapsed source
  (``raw``), 400 ids.
* ``elibadcode``: EliBadCode. A wrapper keeping the base encoder as ``encoder.*`` (its pooler is
  stored but unused) and its own one-output RoBERTa classification head as ``classifier.dense``
  and ``classifier.out_proj``, which is exactly transformers' sequence-classification head. It
  reads tree-sitter code tokens joined by spaces, comments removed (``tokens``), 400 ids.
* ``hf-state-dict``: the state dict of a transformers sequence classifier itself
  (``roberta.*``, ``classifier.*``).

Each is mapped onto transformers' ``AutoModelForSequenceClassification`` of the base's
configuration with the head width the weights have (1 or 2), checked key by key and shape by
shape on the meta device before anything is allocated. Loading stays weights-only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.errors import CheckpointError
from codeaudit.models.input_format import RAW, TOKENS

# Buffers some transformers versions store in state dicts and others rebuild: never weights.
_BUFFER_SUFFIXES = ("position_ids", "token_type_ids")
_EMBEDDINGS = "embeddings.word_embeddings.weight"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


@dataclass(frozen=True)
class Layout:
    """A way published code stores a classifier's weights."""

    name: str
    title: str
    keys: str  # what its keys look like (for messages)
    input_format: str  # the text its published code feeds the model
    max_len: int  # its published block size (ids, special tokens included)
    detect: Callable[[Mapping[str, Any]], str | None]  # the base prefix it stores, or None
    rename: Callable[[str, str, str], str | None]  # (key, stored prefix, model prefix) -> key


def _prefix_before(keys: Mapping[str, Any], head: str) -> str | None:
    """``p`` when ``head + p + '.embeddings.word_embeddings.weight'`` is a key and ``p`` is one
    name (``roberta``, ``bert``, ...)."""
    for key in keys:
        if key.startswith(head) and key.endswith("." + _EMBEDDINGS):
            prefix = key[len(head) : -len(_EMBEDDINGS) - 1]
            if prefix and "." not in prefix:
                return prefix
    return None


def _has(keys: Mapping[str, Any], start: str) -> bool:
    return any(k.startswith(start) for k in keys)


def _detect_codexglue(keys: Mapping[str, Any]) -> str | None:
    prefix = _prefix_before(keys, "encoder.")
    if prefix and _has(keys, "encoder.classifier.") and all(k.startswith("encoder.") for k in keys):
        return prefix
    return None


def _detect_elibadcode(keys: Mapping[str, Any]) -> str | None:
    if "encoder." + _EMBEDDINGS in keys and _has(keys, "classifier."):
        return ""
    return None


def _detect_hf(keys: Mapping[str, Any]) -> str | None:
    prefix = _prefix_before(keys, "")
    return prefix if prefix and _has(keys, "classifier.") else None


def _rename_codexglue(key: str, stored: str, model: str) -> str | None:
    inner = key[len("encoder.") :]
    if inner.startswith(stored + "."):
        return model + inner[len(stored) :]
    return inner


def _rename_elibadcode(key: str, stored: str, model: str) -> str | None:
    if key.startswith("encoder.pooler."):
        return None  # stored, never used: the head reads the first token's final state
    if key.startswith("encoder."):
        return f"{model}.{key[len('encoder.') :]}"
    return key


def _rename_hf(key: str, stored: str, model: str) -> str | None:
    if key.startswith(stored + "."):
        return model + key[len(stored) :]
    return key


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "codexglue",
            "CodeXGLUE defect detection",
            "encoder.roberta.* + encoder.classifier.*",
            RAW,
            400,
            _detect_codexglue,
            _rename_codexglue,
        ),
        Layout(
            "elibadcode",
            "EliBadCode",
            "encoder.* + classifier.dense/out_proj",
            TOKENS,
            400,
            _detect_elibadcode,
            _rename_elibadcode,
        ),
        Layout(
            "hf-state-dict",
            "transformers sequence-classification state dict",
            "roberta.* + classifier.*",
            RAW,
            512,
            _detect_hf,
            _rename_hf,
        ),
    )
}


def strip_data_parallel(state: Mapping[str, Any]) -> dict[str, Any]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _tried() -> str:
    return "; ".join(f"{layout.title} ({layout.keys})" for layout in LAYOUTS.values())


def detect_layout(state: Mapping[str, Any], where: str) -> tuple[Layout, str]:
    """The layout of a bare state dict and the base prefix it stores; a CheckpointError that
    names the layouts tried when none fits."""
    for layout in LAYOUTS.values():
        prefix = layout.detect(state)
        if prefix is not None:
            return layout, prefix
    sample = ", ".join(list(state)[:3])
    raise CheckpointError(
        f"{where}: a bare state dict whose keys ({sample}, ...) fit no known layout; tried: "
        f"{_tried()}"
    )


def resolve_base(base: str) -> Path:
    """A local directory, or a Hugging Face model id resolved from the local cache only."""
    path = Path(base).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"--base {base}: not a directory (expected a base model's directory with "
                "config.json and tokenizer files)"
            )
        return path
    if not _REPO_ID.fullmatch(base):
        raise CheckpointError(f"--base {base}: directory not found")
    try:
        from huggingface_hub import snapshot_download

        snapshot = snapshot_download(base, local_files_only=True)
    except Exception:  # not cached (the exception class moved between huggingface_hub versions)
        raise CheckpointError(
            f"--base {base}: no such directory, and no Hugging Face model {base!r} in the local "
            f"cache ({_cache_dir()}); codeaudit never downloads: fetch it once where the network "
            f"is allowed (huggingface-cli download {base}) or pass its directory"
        ) from None
    return Path(snapshot)


def _cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):
        return "the Hugging Face cache"


def base_files(directory: Path) -> list[Path]:
    """The files of a base directory that a bare state dict takes from it."""
    from codeaudit.models.tokenizer import TOKENIZER_FILES

    names = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "merges.txt")
    wanted = set(names) | set(TOKENIZER_FILES)
    from codeaudit.models.safety import MAX_SIDE_FILE_BYTES, check_regular_file

    found = sorted(p for p in directory.iterdir() if p.name in wanted)
    for path in found:
        check_regular_file(path, directory, limit=MAX_SIDE_FILE_BYTES)
    return found


def head_width(state: Mapping[str, Any], hidden: int | None) -> int:
    """Outputs of the classification head: rows of its last 2-D classifier weight."""
    import torch

    candidates = [
        (k, v)
        for k, v in state.items()
        if k.startswith("classifier.")
        and k.endswith("weight")
        and isinstance(v, torch.Tensor)
        and v.dim() == 2
    ]
    if not candidates:
        return 0
    out = [v for _, v in candidates if hidden is None or v.shape[0] != hidden]
    return int((out or [candidates[-1][1]])[-1].shape[0])


def map_state(
    state: Mapping[str, Any], layout: Layout, stored: str, model_prefix: str, where: str
) -> dict[str, Any]:
    """The state dict under the model's own key names, without unused and buffer entries."""
    if layout.name != "elibadcode" and stored != model_prefix:
        raise CheckpointError(
            f"{where}: the weights are a {stored!r} model but the base configuration describes "
            f"a {model_prefix!r} model: pass the --base it was fine-tuned from"
        )
    mapped: dict[str, Any] = {}
    for key, value in state.items():
        new = layout.rename(key, stored, model_prefix)
        if new is None or new.endswith(_BUFFER_SUFFIXES):
            continue
        mapped[new] = value
    return mapped


def with_labels(config: Any, num_labels: int) -> Any:
    """A copy of a transformers configuration with ``num_labels`` outputs."""
    config = copy.deepcopy(config)
    config.num_labels = num_labels
    if num_labels == 1:
        config.id2label = {0: "vulnerable"}
        config.label2id = {"vulnerable": 0}
    return config
