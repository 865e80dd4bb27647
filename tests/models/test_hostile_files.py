"""Unit tests of the round-two model-file bounds (issue 16): materialised bytes, dtypes and
finite values, regular files in a model directory, tokenizer expansion, defence records,
recipes from metadata and cache entries."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from codeaudit.errors import CheckpointError
from codeaudit.membership.features import read_cache_entry
from codeaudit.membership.references import MAX_RECIPE_EPOCHS, recipe_of
from codeaudit.models.nmid import HASH_NAME, NMID, NOISE_NAMES
from codeaudit.models.safety import (
    MATERIALISED_PER_FILE_BYTE,
    check_materialised,
    check_regular_file,
    check_values,
    materialised_bytes,
)
from codeaudit.models.tokenizer import MAX_CHARS_PER_ID, _expansion, bounded_text


def test_a_stride0_view_counts_every_element() -> None:
    view = torch.zeros(1).expand(1000, 1000)
    assert materialised_bytes({"w": view}) == 4_000_000
    assert materialised_bytes([torch.zeros(3, dtype=torch.float16)]) == 12  # as float32
    with pytest.raises(CheckpointError, match="materialise"):
        check_materialised({"w": view}, 1000, "f.pt")
    check_materialised({"w": torch.zeros(10)}, 40 // MATERIALISED_PER_FILE_BYTE, "f.pt")


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, torch.uint8])
def test_non_float_weights_are_refused(dtype: torch.dtype) -> None:
    with pytest.raises(CheckpointError, match="floating-point weight is expected"):
        check_values("w", torch.zeros(2, 2, dtype=dtype), torch.float32)


def test_values_are_checked_after_the_conversion() -> None:
    huge = torch.full((2,), 1e300, dtype=torch.float64)
    check_values("w", huge, torch.float64)  # finite as float64
    with pytest.raises(CheckpointError, match=r"NaN or infinite values \(as float32\)"):
        check_values("w", huge, torch.float32)
    check_values("ids", torch.arange(3), torch.int64)  # an integer buffer is not a weight


def test_regular_files_only_inside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    assert check_regular_file(tmp_path / "a.json", tmp_path) == (tmp_path / "a.json").resolve()
    os.symlink("/proc/version", tmp_path / "b.json")
    with pytest.raises(CheckpointError, match="outside the model directory"):
        check_regular_file(tmp_path / "b.json", tmp_path)
    os.mkfifo(tmp_path / "c.json")
    with pytest.raises(CheckpointError, match="not a regular file"):
        check_regular_file(tmp_path / "c.json", tmp_path)
    with open(tmp_path / "d.bin", "wb") as handle:
        handle.truncate(200 << 20)
    with pytest.raises(CheckpointError, match="sparse file"):
        check_regular_file(tmp_path / "d.bin", tmp_path)
    with pytest.raises(CheckpointError, match="more than 1"):
        check_regular_file(tmp_path / "a.json", tmp_path, limit=1)


def test_normaliser_expansion_is_read_from_the_configuration() -> None:
    replace = {"type": "Replace", "pattern": {"String": "a"}, "content": "aaaa"}
    assert _expansion(replace) == 4
    assert _expansion({"type": "Sequence", "normalizers": [replace, replace]}) == 16
    assert _expansion({"type": "Replace", "pattern": {"Regex": "."}, "content": "xx"}) == 3
    assert _expansion({"type": "NFKC"}) == 1
    assert _expansion(None) == 1


def test_text_per_function_is_bounded() -> None:
    text, cut = bounded_text("x" * 10_000, 10)
    assert cut and len(text) == 10 * MAX_CHARS_PER_ID
    assert bounded_text("short", 10) == ("short", False)


def _record(**values: object) -> dict:
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
    return record


def test_a_sound_defence_record_loads() -> None:
    assert NMID.from_record(_record()).sigma_ == 1.0


@pytest.mark.parametrize(
    "values",
    [
        {"sigma": 1e308},
        {"sigma": float("inf")},
        {"sigma": -1.0},
        {"sigma": True},
        {"sigma": "1"},
        {"version": -7},
        {"version": True},
        {"version": 0},
        {"version": "1"},
        {"expose": 3},
        {"parent_sha256": "not a hash"},
    ],
)
def test_malformed_defence_records_are_refused(values: dict) -> None:
    with pytest.raises(CheckpointError, match="NMID defense"):
        NMID.from_record(_record(**values), "m.pt")


def _rnn(hidden: int = 8) -> SimpleNamespace:
    return SimpleNamespace(
        arch="bigru", max_len=48, config={"embed_dim": 8, "hidden_dim": hidden, "num_layers": 1}
    )


def test_a_recorded_recipe_within_bounds() -> None:
    recipe = recipe_of(_rnn(), {"hyperparameters": {"epochs": 3, "hidden_dim": 8}}, seed=1)
    assert recipe.epochs == 3 and recipe.hidden_dim == 8 and recipe.max_len == 48


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 10**9),
        ("epochs", MAX_RECIPE_EPOCHS + 1),
        ("epochs", "many"),
        ("epochs", True),
        ("hidden_dim", 200_000),
        ("embed_dim", 9),
        ("max_len", 10**9),
        ("batch_size", 0),
        ("lr", float("nan")),
        ("lr", 0),
        ("dropout", 1.0),
        ("min_freq", 2.5),
    ],
)
def test_recipes_out_of_bounds_are_refused(field: str, value: object) -> None:
    with pytest.raises(CheckpointError, match=rf"hyperparameters\.{field} .*no flag overrides"):
        recipe_of(_rnn(), {"hyperparameters": {field: value}}, seed=1)


def _entry(path: Path, n: int, **arrays: np.ndarray) -> None:
    base = {
        "ids": np.array([str(i) for i in range(n)]),
        "labels": np.zeros(n, "i8"),
        "logits": np.zeros((n, 2), "f4"),
        "embeddings": np.zeros((n, 4), "f4"),
        "unk_rate": np.zeros(n, "f4"),
        "n_ids": np.ones(n, "i8"),
        "truncated": np.zeros(n, bool),
        "n_outputs": np.array(2),
    }
    base.update(arrays)
    np.savez_compressed(path, **base)


def test_cache_entries_are_verified(tmp_path: Path) -> None:
    _entry(tmp_path / "features-ok.npz", 3)
    features, damaged = read_cache_entry(tmp_path, "ok", 3)
    assert features is not None and not damaged
    assert read_cache_entry(tmp_path, "ok", 4) == (None, True)  # not these samples
    assert read_cache_entry(tmp_path, "missing", 3) == (None, False)
    nan = np.zeros((3, 2), "f4")
    nan[1, 1] = np.nan
    _entry(tmp_path / "features-nan.npz", 3, logits=nan)
    assert read_cache_entry(tmp_path, "nan", 3) == (None, True)
    _entry(tmp_path / "features-big.npz", 3, embeddings=np.zeros((3, 1_000_000), "f4"))
    assert read_cache_entry(tmp_path, "big", 3) == (None, True)  # refused before inflating
