"""Shared fixtures: small data sets, tiny trained models of every architecture, the shared data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from codeaudit.cli import PROCESS_ENVIRONMENT

# In-process CLI tests (CliRunner) run in the environment the codeaudit process gives itself
# (codeaudit.cli.main sets these before any Hugging Face import); subprocess tests get it from
# main() itself.
for _name, _value in PROCESS_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_RNN = {"embed_dim": 16, "hidden_dim": 16}
TINY_TRANSFORMER = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def planted_records(n: int, seed: int = 0) -> list[dict]:
    """C functions whose label is carried by a clear pattern (strcpy vs strncpy): learnable fast."""
    rng = random.Random(seed)
    names = ["buf", "dst", "out", "name", "path", "line", "msg", "tmp"]
    records = []
    for i in range(n):
        label = i % 2
        a, b = rng.sample(names, 2)
        size = rng.choice([16, 32, 64, 128])
        copy = f"strcpy({a}, {b});" if label else f"strncpy({a}, {b}, {size} - 1);"
        extra = rng.choice(["", f"int k = {rng.randint(0, 9)};", 'log_msg("x");'])
        code = (
            f"int fn_{i}(char *{b}) {{\n  char {a}[{size}];\n  {extra}\n  {copy}\n"
            f"  return {rng.randint(0, 3)};\n}}\n"
        )
        records.append({"id": f"s{i}", "func": code, "target": label, "lang": "c"})
    return records


@pytest.fixture(scope="session")
def planted_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planted")
    return {
        "train": write_jsonl(root / "train.jsonl", planted_records(80, seed=1)),
        "test": write_jsonl(root / "test.jsonl", planted_records(40, seed=2)),
    }


def _tiny_config(arch: str, data: Path, output: Path, **extra):  # type: ignore[no-untyped-def]
    from codeaudit.config import TrainConfig

    return TrainConfig(
        data=str(data),
        output=str(output),
        arch=arch,
        epochs=extra.pop("epochs", 15),
        batch_size=16,
        max_len=64,
        lr=extra.pop("lr", 1e-2 if arch != "transformer" else 3e-3),
        val_split=0.0,
        embed_dim=TINY_RNN["embed_dim"],
        hidden_dim=TINY_RNN["hidden_dim"],
        min_freq=1,
        transformer=dict(TINY_TRANSFORMER),
        device="cpu",
        **extra,
    )


@pytest.fixture(scope="session")
def tiny_config():  # type: ignore[no-untyped-def]
    return _tiny_config


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, planted_files: dict[str, Path]) -> dict:
    """One tiny trained checkpoint per architecture: {arch: (path, model, result)}."""
    from codeaudit import api

    root = tmp_path_factory.mktemp("models")
    out = {}
    for arch in ("lstm", "bigru", "transformer"):
        path = root / f"{arch}.pt"
        model, result = api.train(_tiny_config(arch, planted_files["train"], path))
        out[arch] = (path, model, result)
    return out


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "bigvul.jsonl").is_file():
        pytest.skip("shared data (../shared/data) not present")
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    # Tiny models run faster on one thread, and results do not depend on the core count.
    import torch

    torch.set_num_threads(1)
