"""``codeaudit train --dp`` (DP-SGD through Opacus) and ``--preset private``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from codeaudit import api
from codeaudit.config import TrainConfig
from codeaudit.errors import CheckpointError
from codeaudit.models.privacy import privacy_of
from tests.conftest import planted_records, write_jsonl
from tests.test_cli import TINY, assert_one_line_error, run

pytest.importorskip("opacus")

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, code: str = "") -> subprocess.CompletedProcess:
    """``codeaudit ARGS`` in a fresh interpreter (``code`` runs first)."""
    script = code + "\nfrom codeaudit.entry import main\nmain()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def dp_model(tmp_path_factory: pytest.TempPathFactory, planted_files: dict, tiny_config) -> Any:
    root = tmp_path_factory.mktemp("dp")
    path = root / "dp.pt"
    config = replace(
        tiny_config("bigru", planted_files["train"], path, epochs=3), dp=True, dp_epsilon=8.0
    )
    model, result = api.train(config)
    return path, model, result


def test_dp_training_records_a_guarantee_within_the_target(dp_model: Any, trained: dict) -> None:
    import torch

    path, _, result = dp_model
    payload = torch.load(path, weights_only=True)
    record = payload["metadata"]["privacy"]
    assert 0 < record["epsilon"] <= 8.0
    assert record["target_epsilon"] == 8.0
    assert record["delta"] == 0.01  # 80 training functions: the largest power of ten below 1/80
    assert record["accountant"] == "prv" and record["max_grad_norm"] == 1.0
    assert record["sample_rate"] == pytest.approx(16 / 80)
    assert record["steps"] == 3 * 5  # 1 / sample rate steps an epoch
    assert record["noise_multiplier"] > 0
    assert result.privacy == privacy_of(payload["metadata"], str(path))
    from codeaudit.report import render

    text = render(result, "markdown")
    assert f"| differential privacy | DP-SGD ({record['epsilon']:.2f}, 0.01)-DP (target 8)" in text
    assert "trained with DP-SGD and spent epsilon" in text
    # an ordinary checkpoint: the architecture's own keys and shapes, nothing of Opacus's
    plain = torch.load(trained["bigru"][0], weights_only=True)
    assert payload["arch"] == "bigru"
    assert list(payload["state_dict"]) == list(plain["state_dict"])
    for key, value in payload["state_dict"].items():
        assert value.shape == plain["state_dict"][key].shape


def test_a_dp_checkpoint_loads_and_runs_through_the_cli(
    dp_model: Any, planted_files: dict, tmp_path: Path
) -> None:
    path, _, result = dp_model
    out = _cli(
        "predict", str(path), str(planted_files["test"]), "--format", "json", "--threads", "1"
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["checkpoint"]["privacy"]["epsilon"] == pytest.approx(result.privacy.epsilon)
    assert report["metrics"]["n"] == 40
    md = tmp_path / "m.md"
    out = _cli(
        "membership",
        str(path),
        "--members",
        str(planted_files["train"]),
        "--nonmembers",
        str(planted_files["test"]),
        "--bootstrap",
        "20",
        "--report",
        str(md),
        "--threads",
        "1",
    )
    assert out.returncode in (0, 1), out.stderr
    text = md.read_text(encoding="utf-8")
    assert "training privacy: DP-SGD" in text  # the header
    assert f"DP-SGD ({result.privacy.epsilon:.2f}, 0.01)-DP" in text


def test_dp_training_is_deterministic_for_a_seed(
    tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    paths = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        path = tmp_path / f"{name}.pt"
        config = tiny_config("lstm", planted_files["train"], path, epochs=1, seed=seed)
        api.train(replace(config, dp=True, dp_noise_multiplier=1.0, dp_accountant="rdp"))
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_empty_poisson_batches_still_take_a_noised_step(tiny_config, tmp_path: Path) -> None:
    """Batch size 1 over 40 functions: each step's batch is empty with probability 0.36; every
    step is accounted, and noise alone moves the weights."""
    data = write_jsonl(tmp_path / "t.jsonl", planted_records(40, seed=3))
    config = replace(
        tiny_config("lstm", data, tmp_path / "m.pt", epochs=1),
        batch_size=1,
        dp=True,
        dp_noise_multiplier=2.0,
    )
    _, result = api.train(config)
    assert result.privacy.steps == 40
    assert result.privacy.sample_rate == pytest.approx(1 / 40)
    assert 0 < result.privacy.epsilon < math.inf


def test_the_transformer_trains_with_dp(tiny_config, planted_files: dict, tmp_path: Path) -> None:
    config = tiny_config("transformer", planted_files["train"], tmp_path / "t.pt", epochs=1)
    _, result = api.train(replace(config, dp=True, dp_epsilon=4.0))
    assert 0 < result.privacy.epsilon <= 4.0


def test_dp_without_opacus_is_a_one_line_usage_error(planted_files: dict, tmp_path: Path) -> None:
    hide = textwrap.dedent(
        """
        import sys

        class _HideOpacus:
            def find_spec(self, name, path=None, target=None):
                if name == "opacus" or name.startswith("opacus."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, _HideOpacus())
        """
    )
    out = _cli(
        "train",
        str(planted_files["train"]),
        "-o",
        str(tmp_path / "m.pt"),
        "--dp",
        "--dp-epsilon",
        "4",
        code=hide,
    )
    assert_one_line_error(out.returncode, out.stderr, "pip install 'codeaudit[dp]'")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--dp", "--dp-epsilon", "0"], "--dp-epsilon"),
        (["--dp", "--dp-epsilon", "-1"], "--dp-epsilon"),
        (["--dp", "--dp-epsilon", "4", "--dp-delta", "1"], "--dp-delta"),
        (["--dp", "--dp-epsilon", "4", "--dp-delta", "0"], "--dp-delta"),
        (["--dp", "--dp-noise-multiplier", "0"], "--dp-noise-multiplier"),
        (["--dp", "--dp-epsilon", "4", "--dp-max-grad-norm", "0"], "--dp-max-grad-norm"),
        (["--dp", "--dp-epsilon", "nan"], "--dp-epsilon"),
        (["--dp"], "exactly one of --dp-epsilon and --dp-noise-multiplier"),
        (["--dp", "--dp-epsilon", "4", "--dp-noise-multiplier", "1"], "exactly one"),
        (["--dp-epsilon", "4"], "--dp-epsilon needs --dp"),
        (["--dp", "--dp-epsilon", "4", "--dp-accountant", "gdp"], "--dp-accountant"),
        (["--preset", "private", "--val-split", "0"], "needs validation data"),
    ],
)
def test_bad_dp_settings_are_one_line_usage_errors(
    flags: list[str], needle: str, planted_files: dict, tmp_path: Path
) -> None:
    out = tmp_path / "m.pt"
    code, _, stderr = run("train", str(planted_files["train"]), "-o", str(out), *TINY, *flags)
    assert_one_line_error(code, stderr, needle)
    assert not out.exists()


def test_too_little_noise_for_the_prv_accountant_fails_before_training(
    planted_files: dict, tmp_path: Path
) -> None:
    """PRV's discretisation at noise multiplier 0.001 would need 1.4 TiB: refused up front."""
    out = tmp_path / "m.pt"
    flags = ["--dp", "--dp-noise-multiplier", "0.001"]
    code, _, stderr = run("train", str(planted_files["train"]), "-o", str(out), *TINY, *flags)
    assert_one_line_error(code, stderr, "the prv accountant cannot compute epsilon", "rdp")
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"epsilon": -1.0}, "epsilon -1.0"),
        ({"epsilon": float("nan")}, "epsilon nan"),
        ({"epsilon": float("inf")}, "epsilon inf"),
        ({"delta": 1.5}, "delta 1.5"),
        ({"steps": -3}, "steps -3"),
        ({"accountant": "made-up"}, "accountant 'made-up'"),
        ({"mechanism": "hope"}, "mechanism 'hope'"),
    ],
)
def test_an_invalid_recorded_guarantee_is_refused_on_load(
    dp_model: Any, tmp_path: Path, planted_files: dict, change: dict, needle: str
) -> None:
    import torch

    path, _, _ = dp_model
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["privacy"].update(change)
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    code, _, stderr = run("predict", str(bad), str(planted_files["test"]))
    assert_one_line_error(code, stderr, "invalid training privacy record", needle)
    with pytest.raises(CheckpointError, match="invalid training privacy record"):
        privacy_of(payload["metadata"], "x")


def test_a_checkpoint_without_a_guarantee_shows_none(trained: dict, planted_files: dict) -> None:
    path = trained["lstm"][0]
    code, out, _ = run(
        "predict", str(path), str(planted_files["test"]), "--format", "markdown", "-q"
    )
    assert code == 0
    assert "privacy" not in out.lower()


def test_preset_private_fills_only_the_settings_left_at_their_defaults() -> None:
    config = TrainConfig(data="d.jsonl", output="m.pt", preset="private")
    assert (config.patience, config.weight_decay, config.dropout) == (3, 0.1, 0.3)
    mine = TrainConfig(data="d.jsonl", output="m.pt", preset="private", patience=5, dropout=0.2)
    assert (mine.patience, mine.weight_decay, mine.dropout) == (5, 0.1, 0.2)
    plain = TrainConfig(data="d.jsonl", output="m.pt")
    assert (plain.patience, plain.weight_decay, plain.dropout) == (0, 0.01, 0.1)


def test_unlearning_drops_the_recorded_guarantee() -> None:
    """backdoor --unlearn fine-tunes without DP-SGD: the repaired checkpoint claims nothing."""
    from types import SimpleNamespace

    from codeaudit.backdoor.check import repaired_metadata

    loaded = SimpleNamespace(metadata={"privacy": {"epsilon": 1.0}, "seed": 3}, sha256="a" * 64)
    best = SimpleNamespace(victim_label=1, target_label=0, anchored_ids=[5], anchored_text="x")
    config = SimpleNamespace(
        model="m.pt",
        unlearn_scope="head",
        unlearn_epochs=1,
        unlearn_lr=1e-3,
        trigger_share=0.1,
        unlearn_insertion="mixed",
        seed=0,
    )
    metadata = repaired_metadata(loaded, best, config)
    assert "privacy" not in metadata
    assert metadata["seed"] == 3 and metadata["repaired"]["parent_sha256"] == "a" * 64


def test_a_vocabulary_built_on_other_code_is_covered_by_the_guarantee(
    tiny_config, planted_files: dict, tmp_path: Path
) -> None:
    import torch

    public = write_jsonl(
        tmp_path / "public.jsonl",
        [{"id": r["id"], "func": r["func"]} for r in planted_records(30, seed=9)],  # unlabelled
    )
    base = replace(
        tiny_config("lstm", planted_files["train"], tmp_path / "v.pt", epochs=1),
        dp=True,
        dp_noise_multiplier=1.0,
    )
    _, result = api.train(replace(base, vocab=str(public)))
    assert result.privacy.covers == "weights+vocabulary"
    assert "covers the weights and the vocabulary" in result.privacy.describe()
    metadata = torch.load(tmp_path / "v.pt", weights_only=True)["metadata"]
    assert metadata["vocab_file"] == "public.jsonl" and len(metadata["vocab_sha256"]) == 64
    assert not any("--vocab" in w for w in result.warnings)
    # the training file itself as --vocab: the vocabulary is the training data's, and says so
    _, same = api.train(replace(base, vocab=str(planted_files["train"]), force=True))
    assert same.privacy.covers == "weights"
    assert any("80 of the 80 --vocab functions are training functions" in w for w in same.warnings)


def test_vocab_is_refused_with_pretrained() -> None:
    from codeaudit.params import ParameterError

    with pytest.raises(ParameterError, match="vocab does not apply with --pretrained"):
        TrainConfig(
            data="d.jsonl", output="m.pt", arch="transformer", pretrained="dir", vocab="v.jsonl"
        )
