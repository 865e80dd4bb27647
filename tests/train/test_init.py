"""``codeaudit train --init`` (start from another checkpoint) and ``--freeze-embeddings``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from codeaudit import api
from codeaudit.errors import UsageError
from codeaudit.params import ParameterError
from tests.conftest import planted_records, write_jsonl
from tests.test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[2]


def _state(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, weights_only=True)


def _embedding(path: Path) -> Any:
    state = _state(path)["state_dict"]
    (key,) = [k for k in state if k.endswith("embedding.weight")]
    return state[key]


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> dict[str, Any]:
    """A tiny BiGRU trained on 'public' functions none of which is a training function of the
    tests below (planted_files uses seeds 1 and 2)."""
    root = tmp_path_factory.mktemp("public")
    data = write_jsonl(root / "public.jsonl", planted_records(80, seed=7))
    path = root / "public.pt"
    model, result = api.train(tiny_config("bigru", data, path, epochs=4))
    return {"data": data, "path": path, "model": model, "result": result, "root": root}


def _from(public: dict, tiny_config, data: Path, out: Path, **extra: Any) -> Any:
    config = tiny_config("bigru", data, out, **{"epochs": 2, **extra})
    return replace(config, init=str(public["path"]), embed_dim=None, hidden_dim=None)


def test_init_keeps_the_checkpoints_vocabulary_and_records_where_it_started(
    public: dict, tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    out = tmp_path / "further.pt"
    _, result = api.train(_from(public, tiny_config, planted_files["train"], out))
    start = _state(public["path"])
    saved = _state(out)
    # the vocabulary is the starting model's, not one built on the training data
    assert saved["tokenizer"] == start["tokenizer"]
    assert result.vocab_size == public["result"].vocab_size
    init = saved["metadata"]["init"]
    assert init["file"] == "public.pt" and len(init["sha256"]) == 64
    assert init["shared_functions"] == 0
    assert saved["metadata"]["hyperparameters"]["init"] == "public.pt"
    # trained further: the weights moved away from the starting ones
    assert not (_embedding(out) == _embedding(public["path"])).all()


def test_frozen_embeddings_stay_as_the_starting_model_learnt_them(
    public: dict, tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    out = tmp_path / "frozen.pt"
    model, _ = api.train(
        _from(public, tiny_config, planted_files["train"], out, freeze_embeddings=True)
    )
    assert (_embedding(out) == _embedding(public["path"])).all()
    state = _state(out)["state_dict"]
    start = _state(public["path"])["state_dict"]
    moved = [k for k in state if not (state[k] == start[k]).all()]
    assert moved and all("embedding" not in k for k in moved)  # the rest did train
    # the returned model is left trainable, as every other trained model
    assert all(p.requires_grad for p in model.module.parameters())
    assert _state(out)["metadata"]["hyperparameters"]["freeze_embeddings"] is True


def test_freezing_without_init_keeps_the_fresh_table(
    tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    tables = {}
    for frozen in (False, True):
        for epochs in (1, 3):
            out = tmp_path / f"m-{frozen}-{epochs}.pt"
            config = tiny_config("lstm", planted_files["train"], out, epochs=epochs)
            api.train(replace(config, freeze_embeddings=frozen))
            tables[frozen, epochs] = _embedding(out)
    assert (tables[True, 1] == tables[True, 3]).all()  # both the seeded initial table
    assert not (tables[False, 1] == tables[False, 3]).all()


def test_dp_from_a_disjoint_public_model_covers_the_vocabulary(
    public: dict, tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    pytest.importorskip("opacus")
    config = replace(
        _from(public, tiny_config, planted_files["train"], tmp_path / "dp.pt"),
        dp=True,
        dp_noise_multiplier=1.0,
        freeze_embeddings=True,
    )
    _, result = api.train(config)
    assert result.privacy.covers == "weights+vocabulary"
    assert not any("--init" in w for w in result.warnings)
    # starting from a model that saw these very functions: the guarantee cannot cover them
    seen = replace(config, init=None, dp=False, dp_noise_multiplier=None, freeze_embeddings=False)
    seen = replace(seen, output=str(tmp_path / "seen.pt"), embed_dim=16, hidden_dim=16)
    api.train(seen)
    again = replace(config, init=str(tmp_path / "seen.pt"), output=str(tmp_path / "dp2.pt"))
    _, result = api.train(again)
    assert result.privacy.covers == "weights"
    assert any("80 of the 80 training functions were already seen" in w for w in result.warnings)


def test_init_from_another_architecture_is_a_one_line_error(
    public: dict, planted_files: dict, tmp_path: Path
) -> None:
    out = tmp_path / "x.pt"
    code, _, err = run(
        "train", str(planted_files["train"]), "-o", str(out), "--arch", "lstm",
        "--init", str(public["path"]), "--epochs", "1",
    )  # fmt: skip
    assert_one_line_error(code, err, "is a bigru model", "--arch bigru")
    assert not out.exists()


def test_size_settings_do_not_apply_with_init() -> None:
    from codeaudit.config import TrainConfig

    for name in ("embed_dim", "hidden_dim", "num_layers"):
        with pytest.raises(ParameterError, match="does not apply with --init"):
            TrainConfig(data="d.jsonl", output="m.pt", init="p.pt", **{name: 8})
    with pytest.raises(ParameterError, match="vocab does not apply with --init"):
        TrainConfig(data="d.jsonl", output="m.pt", init="p.pt", vocab="v.jsonl")


def test_reference_models_refuse_a_model_trained_from_init(
    public: dict, tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    from codeaudit.membership.references import recipe_of

    out = tmp_path / "further.pt"
    model, _ = api.train(_from(public, tiny_config, planted_files["train"], out))
    with pytest.raises(UsageError, match="--init"):
        recipe_of(model, _state(out)["metadata"], seed=0)


def test_init_runs_in_a_fresh_process(public: dict, planted_files: dict, tmp_path: Path) -> None:
    out = tmp_path / "cli.pt"
    done = subprocess.run(
        [
            sys.executable, "-m", "codeaudit", "train", str(planted_files["train"]), "-o",
            str(out), "--init", str(public["path"]), "--freeze-embeddings", "--epochs", "1",
            "--val-split", "0", "--threads", "1", "--format", "json", "-q",
        ],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (_embedding(out) == _embedding(public["path"])).all()
    assert '"init": "public.pt"' in done.stdout


def test_a_hardened_model_cannot_be_a_starting_point(
    public: dict, planted_files: dict, tmp_path: Path
) -> None:
    from codeaudit.models.checkpoint import save_checkpoint
    from codeaudit.models.nmid import NMID, HardenedModel

    base = public["model"]
    hardened = HardenedModel(base, NMID(sigma=1.0, key="5eed" * 8).fit(base))
    start = tmp_path / "hardened.pt"
    save_checkpoint(hardened, start, metadata=_state(public["path"])["metadata"])
    out = tmp_path / "x.pt"
    code, _, err = run(
        "train", str(planted_files["train"]), "-o", str(out), "--init", str(start),
        "--epochs", "1",
    )  # fmt: skip
    assert_one_line_error(code, err, "a hardened model")
    assert not out.exists()
