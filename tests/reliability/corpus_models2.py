"""Hostile model files, round two (issue 16): the classes the first corpus missed.

Each class has several variants, so that a fix of one example does not pass: weights that
cost more than the file holds (stride-0 views in a checkpoint, in its metadata, in a Hugging
Face ``pytorch_model.bin``; a safetensors header that declares more than it stores), non-float
or non-finite weights (complex, int, bool; float64 values that are inf in float32; NaN in a
Hugging Face directory), a checkpoint ``max_len`` beyond what codeaudit reads, special files in
a model directory (links to ``/proc`` and out of the directory, FIFOs, sparse files), tokenizers
whose normaliser multiplies text, tokenizer ids beyond the embedding, training recipes from
metadata that ask for unbounded work, malformed defence records and damaged cache entries.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.reliability.corpus import (
    OK,
    Case,
    Expect,
    _hf,
    _payload,
    checkpoint,
    error,
)
from tests.reliability.harness import World

# -- builders -------------------------------------------------------------------------------------


def _put_weight(name: str, make: Callable[[Any], Any]) -> Callable[[dict[str, Any], Path], None]:
    """Replace a weight of the checkpoint with ``make(old_tensor)``."""

    def change(payload: dict[str, Any], d: Path) -> None:
        payload["state_dict"][name] = make(payload["state_dict"][name])

    return change


def _expanded(shape: tuple[int, ...], dtype: str = "float32") -> Callable[[Any], Any]:
    def make(old: Any) -> Any:
        import torch

        return torch.zeros(1, dtype=getattr(torch, dtype)).expand(*shape)

    return make


def _expanded_metadata(payload: dict[str, Any], d: Path) -> None:
    import torch

    payload["metadata"]["note"] = torch.ones(1).expand(50_000_000)


def _as(dtype: str, fill: Any = None) -> Callable[[Any], Any]:
    def make(old: Any) -> Any:
        import torch

        new = old.to(getattr(torch, dtype))
        if fill is not None:
            new[0, 0] = fill
        return new

    return make


def _complex_nan(old: Any) -> Any:
    import torch

    new = old.to(torch.complex64)
    new[0, 0] = complex(0.5, float("nan"))
    return new


def _hf_weights(change: Callable[[dict[str, Any]], None], *, as_bin: bool = False) -> Builder2:
    def edit(target: Path) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        weights = dict(load_file(target / "model.safetensors"))
        change(weights)
        if as_bin:
            (target / "model.safetensors").unlink()
            torch.save(weights, target / "pytorch_model.bin")
        else:
            save_file(weights, target / "model.safetensors", metadata={"format": "pt"})

    return edit


Builder2 = Callable[[Path], None]


def _embedding_key(weights: dict[str, Any]) -> str:
    return next(k for k in weights if "word_embeddings" in k)


def _hf_expanded_bin(weights: dict[str, Any]) -> None:
    import torch

    key = _embedding_key(weights)
    rows, width = weights[key].shape
    weights[key] = torch.zeros(1).expand(rows * 100_000, width)


def _hf_nan(weights: dict[str, Any]) -> None:
    key = next(k for k in weights if k.startswith("classifier.") and k.endswith("weight"))
    weights[key] = weights[key].clone()
    weights[key][0, 0] = float("nan")


def _hf_float64_huge(weights: dict[str, Any]) -> None:
    key = next(k for k in weights if k.startswith("classifier.") and k.endswith("weight"))
    weights[key] = weights[key].double()
    weights[key][0, 0] = 1e300


def _hf_header_lies(target: Path) -> None:
    """A safetensors header that declares a tensor far larger than its byte range."""
    path = target / "model.safetensors"
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    key = next(k for k in header if "word_embeddings" in k)
    header[key]["shape"] = [10**6, header[key]["shape"][1]]
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + length :])


def _link(name: str, to: str | Callable[[Path], str]) -> Builder2:
    def edit(target: Path) -> None:
        destination = to(target) if callable(to) else to
        (target / name).unlink(missing_ok=True)
        os.symlink(destination, target / name)

    return edit


def _outside_copy(name: str) -> Callable[[Path], str]:
    def place(target: Path) -> str:
        outside = target.parent / f"outside-{name}"
        outside.write_bytes((target / name).read_bytes())
        return str(outside)

    return place


def _fifo_in(name: str) -> Builder2:
    def edit(target: Path) -> None:
        (target / name).unlink(missing_ok=True)
        os.mkfifo(target / name)

    return edit


def _sparse(name: str, size: int = 100 << 20) -> Builder2:
    def edit(target: Path) -> None:
        with open(target / name, "wb") as handle:
            handle.truncate(size)

    return edit


def _normaliser(normalizer: dict[str, Any]) -> Builder2:
    def edit(target: Path) -> None:
        config = json.loads((target / "tokenizer.json").read_text())
        config["normalizer"] = normalizer
        (target / "tokenizer.json").write_text(json.dumps(config))

    return edit


def _replace(pattern: dict[str, str], content: str) -> dict[str, Any]:
    return {"type": "Replace", "pattern": pattern, "content": content}


def _sparse_ids(target: Path) -> None:
    """The same number of tokens, one of them with an id past the embedding."""
    config = json.loads((target / "tokenizer.json").read_text())
    vocab = config["model"]["vocab"]
    top = max(vocab, key=vocab.get)
    vocab[top] = 10**6
    (target / "tokenizer.json").write_text(json.dumps(config))


def _hyper(**values: Any) -> Callable[[dict[str, Any], Path], None]:
    def change(payload: dict[str, Any], d: Path) -> None:
        payload["metadata"].setdefault("hyperparameters", {}).update(values)

    return change


def _defense(**values: Any) -> Callable[[dict[str, Any], Path], None]:
    def change(payload: dict[str, Any], d: Path) -> None:
        from codeaudit.models.nmid import HASH_NAME, NOISE_NAMES

        record = {
            "kind": "nmid",
            "version": 1,
            "sigma": 1.0,
            "expose": "probs",
            "keyed": True,
            "key": "0123456789abcdef0123456789abcdef",
            "hash": HASH_NAME,
            "noise": NOISE_NAMES[2],
            "parent_sha256": None,
        }
        record.update(values)
        payload["defense"] = record

    return change


def _cache(
    write: Callable[[Any, Path, int, Any], None],
) -> Callable[[Path, World], dict[str, str]]:
    """Cache entries under the keys the membership check looks up, written by
    ``write(np, path, n_samples, ids)``."""

    def build(d: Path, w: World) -> dict[str, str]:
        import numpy as np

        from codeaudit.data.loader import load_dataset
        from codeaudit.io import sha256_file
        from codeaudit.membership.features import cache_key

        cache = d / "cache"
        cache.mkdir()
        max_len = _payload(w)["max_len"]
        for slot in ("members", "nonmembers"):
            data = load_dataset(w.inputs[slot])
            key = cache_key(sha256_file(w.inputs["model"]), data.sha256, max_len, data.ids[0])
            write(np, cache / f"features-{key}.npz", len(data), data.ids)
        return {"cache": str(cache)}

    return build


def _inflating(np: Any, path: Path, n: int, ids: Any) -> None:
    with open(path, "wb") as handle:
        np.savez_compressed(handle, ids=np.array(ids), embeddings=np.zeros((n, 200_000), "f4"))


def _nan_entry(np: Any, path: Path, n: int, ids: Any) -> None:
    logits = np.zeros((n, 2), "f4")
    logits[0, 0] = np.nan
    with open(path, "wb") as handle:
        np.savez(
            handle,
            ids=np.array(ids, dtype=str),
            labels=np.zeros(n, "i8"),
            logits=logits,
            embeddings=np.zeros((n, 4), "f4"),
            unk_rate=np.zeros(n, "f4"),
            n_ids=np.ones(n, "i8"),
            truncated=np.zeros(n, bool),
            n_outputs=np.array(2),
        )


# -- the cases ------------------------------------------------------------------------------------

MATERIALISE = r"the weights materialise [\d,]+ bytes from a file of [\d,]+"
WEIGHT = r"bad\.pt: weight 'classifier\.weight' "
RECIPE = r"hyperparameters\.{} = '{}' is not {}.*no flag overrides"
DAMAGED = r"cache entry features-\w+\.npz was damaged .* recomputed"

CASES: list[Case] = [
    # 1. cost a file does not hold
    Case(
        "stride0-weight-in-checkpoint",
        checkpoint(_put_weight("embedding.weight", _expanded((200_000, 1000)))),
        error(r"bad\.pt: " + MATERIALISE),
        slot="model",
    ),
    Case(
        "stride0-float16-weight-in-checkpoint",
        checkpoint(_put_weight("classifier.weight", _expanded((30_000, 30_000), "float16"))),
        error(r"bad\.pt: " + MATERIALISE),
        slot="model",
    ),
    Case(
        "stride0-tensor-in-metadata",
        checkpoint(_expanded_metadata),
        error(r"bad\.pt: " + MATERIALISE),
        slot="model",
    ),
    Case(
        "hf-stride0-pytorch-model-bin",
        _hf(_hf_weights(_hf_expanded_bin, as_bin=True)),
        error(r"hf/pytorch_model\.bin: " + MATERIALISE),
        slot="model",
    ),
    Case(
        "hf-safetensors-header-declares-more",
        _hf(_hf_header_lies),
        error(
            r"hf/model\.safetensors: unreadable safetensors file: tensor '.*word_emb.*' declares"
        ),
        slot="model",
    ),
    # 7. non-float and non-finite weights
    Case(
        "weight-complex-with-nan",
        checkpoint(_put_weight("classifier.weight", _complex_nan)),
        error(WEIGHT + r"has dtype complex64, a floating-point weight is expected"),
        slot="model",
    ),
    Case(
        "weight-float64-inf-in-float32",
        checkpoint(_put_weight("classifier.weight", _as("float64", 1e300))),
        error(WEIGHT + r"contains NaN or infinite values \(as float32\)"),
        slot="model",
    ),
    Case(
        "weight-int64",
        checkpoint(_put_weight("classifier.weight", _as("int64"))),
        error(WEIGHT + r"has dtype int64"),
        slot="model",
    ),
    Case(
        "weight-bool",
        checkpoint(_put_weight("classifier.weight", _as("bool"))),
        error(WEIGHT + r"has dtype bool"),
        slot="model",
    ),
    Case(
        "hf-weight-nan",
        _hf(_hf_weights(_hf_nan)),
        error(r"hf: weight 'classifier\..*' contains NaN or infinite values"),
        slot="model",
    ),
    Case(
        "hf-weight-float64-inf-in-float32",
        _hf(_hf_weights(_hf_float64_huge)),
        error(r"hf: weight 'classifier\..*' contains NaN or infinite values"),
        slot="model",
    ),
    # 3. what the model reads
    Case(
        "checkpoint-max-len-1e9",
        checkpoint(lambda p, d: p.__setitem__("max_len", 10**9)),
        error(r"bad\.pt: checkpoint max_len 1000000000 is more than the 4096 ids"),
        slot="model",
    ),
    # 4. special files in a Hugging Face directory
    Case(
        "hf-tokenizer-links-to-proc",
        _hf(_link("tokenizer.json", "/proc/version")),
        error(r"hf/tokenizer\.json: a link to /proc/version, outside the model directory"),
        slot="model",
    ),
    Case(
        "hf-weights-link-out-of-the-directory",
        _hf(_link("model.safetensors", _outside_copy("model.safetensors"))),
        error(r"hf/model\.safetensors: a link to .*outside-model\.safetensors, outside the"),
        slot="model",
    ),
    Case(
        "hf-config-is-a-fifo",
        _hf(_fifo_in("tokenizer_config.json")),
        error(r"hf/tokenizer_config\.json: not a regular file"),
        slot="model",
    ),
    Case(
        "hf-sparse-weights",
        _hf(_sparse("pytorch_model.bin")),
        error(r"hf/pytorch_model\.bin: a sparse file \([\d,]+ bytes"),
        slot="model",
    ),
    Case(
        "hf-unused-link-and-sparse-file-are-not-read",
        _hf(lambda t: (_link("notes.txt", "/proc/version")(t), _sparse("junk.bin")(t))),
        Expect(OK),
        slot="model",
        commands=("predict",),
    ),
    # 5. tokenizers that multiply text
    Case(
        "hf-normaliser-replace-multiplies",
        _hf(_normaliser(_replace({"String": "a"}, "a" * 1000))),
        error(r"hf: the tokenizer's normaliser can lengthen text 1000 times"),
        slot="model",
    ),
    Case(
        "hf-normaliser-regex-replace",
        _hf(_normaliser(_replace({"Regex": "."}, "xyzxyzxyzxyz"))),
        error(r"hf: the tokenizer's normaliser can lengthen text \d+ times"),
        slot="model",
    ),
    Case(
        "hf-normaliser-chained-replaces",
        _hf(
            _normaliser(
                {
                    "type": "Sequence",
                    "normalizers": [_replace({"String": c}, c * 3) for c in "etaoi"],
                }
            )
        ),
        error(r"hf: the tokenizer's normaliser can lengthen text 243 times"),
        slot="model",
    ),
    # 9. ids beyond the embedding
    Case(
        "hf-tokenizer-sparse-ids",
        _hf(_sparse_ids),
        error(r"hf: tokenizer ids reach 1000000 but the model's embedding has \d+ rows"),
        slot="model",
    ),
    # 8. the defence record
    Case(
        "defense-sigma-1e308",
        checkpoint(_defense(sigma=1e308)),
        error(r"bad\.pt: invalid NMID defense sigma '1e\+308'"),
        slot="model",
    ),
    Case(
        "defense-sigma-nan",
        checkpoint(_defense(sigma=float("nan"))),
        error(r"bad\.pt: invalid NMID defense sigma 'nan'"),
        slot="model",
    ),
    Case(
        "defense-version-negative",
        checkpoint(_defense(version=-7)),
        error(r"bad\.pt: invalid NMID defense version '-7'"),
        slot="model",
    ),
    Case(
        "defense-version-true",
        checkpoint(_defense(version=True)),
        error(r"bad\.pt: invalid NMID defense version 'True'"),
        slot="model",
    ),
    Case(
        "defense-sigma-is-a-string",
        checkpoint(_defense(sigma="2")),
        error(r"bad\.pt: invalid NMID defense sigma '2'"),
        slot="model",
    ),
    # 2. a recipe from metadata (--references)
    Case(
        "recipe-epochs-1e9",
        checkpoint(_hyper(epochs=10**9)),
        error(RECIPE.format("epochs", "1000000000", r"a whole number from 1 to 200")),
        slot="model",
        commands=("membership",),
        extra=("--references", "2"),
    ),
    Case(
        "recipe-epochs-many",
        checkpoint(_hyper(epochs="many")),
        error(RECIPE.format("epochs", "many", "")),
        slot="model",
        commands=("membership",),
        extra=("--references", "2"),
    ),
    Case(
        "recipe-hidden-dim-larger-than-the-model",
        checkpoint(_hyper(hidden_dim=200_000)),
        error(RECIPE.format("hidden_dim", "200000", r"a whole number from 1 to 8")),
        slot="model",
        commands=("membership",),
        extra=("--references", "2"),
    ),
    Case(
        "recipe-lr-infinite",
        checkpoint(_hyper(lr=float("inf"))),
        error(RECIPE.format("lr", "inf", "")),
        slot="model",
        commands=("membership",),
        extra=("--references", "2"),
    ),
    Case(
        "recipe-batch-size-bool",
        checkpoint(_hyper(batch_size=True)),
        error(RECIPE.format("batch_size", "True", "")),
        slot="model",
        commands=("membership",),
        extra=("--references", "2"),
    ),
    # 6. damaged cache entries: recomputed with a warning
    Case(
        "cache-entry-inflates",
        _cache(_inflating),
        Expect(OK, warning=DAMAGED),
        slot="none",
        commands=("membership",),
        extra=("--cache-dir", "{cache}"),
        may_change=("cache",),
    ),
    Case(
        "cache-entry-with-nan",
        _cache(_nan_entry),
        Expect(OK, warning=DAMAGED),
        slot="none",
        commands=("membership",),
        extra=("--cache-dir", "{cache}"),
        may_change=("cache",),
    ),
]
