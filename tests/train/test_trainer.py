from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codeaudit import api
from codeaudit.config import PredictConfig
from codeaudit.errors import TrainingError, UsageError
from codeaudit.models.tokenizer import Encoding
from codeaudit.train.trainer import conflicting_identical, cross_entropy
from tests.conftest import planted_records, write_jsonl


@pytest.mark.parametrize("arch", ["lstm", "bigru", "transformer"])
def test_models_learn_a_planted_pattern(trained: dict, planted_files: dict, arch: str) -> None:
    path, _, result = trained[arch]
    losses = [h.train_loss for h in result.history]
    assert losses[-1] < losses[0]
    report = api.predict(PredictConfig(model=str(path), data=str(planted_files["test"])))
    threshold = 0.9 if arch != "transformer" else 0.75
    assert report.metrics.accuracy >= threshold, report.metrics


@pytest.mark.parametrize("arch", ["bigru", "transformer"])
def test_same_seed_same_bytes_other_seed_other_weights(
    tiny_config, planted_files: dict, tmp_path: Path, arch: str
) -> None:
    data = planted_files["train"]
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        path = tmp_path / f"{name}.pt"
        api.train(tiny_config(arch, data, path, epochs=1, seed=seed))
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_validation_split_keeps_pairs_together(tiny_config, tmp_path: Path) -> None:
    records = planted_records(60)
    for i, record in enumerate(records):
        record["pair"] = f"p{i // 2}"
    data = write_jsonl(tmp_path / "paired.jsonl", records)
    config = tiny_config("lstm", data, tmp_path / "m.pt", epochs=1)
    from dataclasses import replace

    _, result = api.train(replace(config, val_split=0.2))
    assert result.val_source == "split"
    assert result.n_val % 2 == 0 and result.n_train + result.n_val == 60
    assert 6 <= result.n_val <= 18


def test_early_stopping_keeps_the_best_epoch(tiny_config, tmp_path: Path) -> None:
    from dataclasses import replace

    train = write_jsonl(tmp_path / "t.jsonl", planted_records(40, seed=5))
    # validation labels flipped: validation loss rises as the model learns the training data
    flipped = [dict(r, target=1 - r["target"]) for r in planted_records(20, seed=6)]
    val = write_jsonl(tmp_path / "v.jsonl", flipped)
    config = replace(
        tiny_config("bigru", train, tmp_path / "m.pt", epochs=8),
        val=str(val),
        patience=2,
    )
    _, result = api.train(config)
    val_losses = [h.val_loss for h in result.history]
    assert result.kept_epoch == int(np.argmin(val_losses)) + 1
    assert len(result.history) < 8  # stopped early
    assert result.val_metrics.loss == pytest.approx(min(val_losses), rel=1e-5)


def test_training_refuses_single_class_and_tiny_data(tiny_config, tmp_path: Path) -> None:
    one_class = [dict(r, target=1) for r in planted_records(10)]
    data = write_jsonl(tmp_path / "one.jsonl", one_class)
    with pytest.raises(TrainingError, match="only label 1"):
        api.train(tiny_config("lstm", data, tmp_path / "m.pt"))
    assert not (tmp_path / "m.pt").exists()
    tiny = write_jsonl(tmp_path / "tiny.jsonl", planted_records(2))
    from dataclasses import replace

    with pytest.raises(TrainingError, match="too few samples"):
        api.train(replace(tiny_config("lstm", tiny, tmp_path / "m.pt"), val_split=0.5))


def test_transformer_max_len_limit(tiny_config, planted_files: dict, tmp_path: Path) -> None:
    from dataclasses import replace

    config = replace(
        tiny_config("transformer", planted_files["train"], tmp_path / "m.pt"), max_len=600
    )
    with pytest.raises(UsageError, match="at most 512"):
        api.train(config)


def test_conflicting_identical_counts_both_sides() -> None:
    def enc(ids: tuple[int, ...]) -> Encoding:
        return Encoding(ids, tuple(range(len(ids))), len(ids), False, 0)

    encodings = [enc((1, 2)), enc((1, 2)), enc((3,)), enc((3,)), enc((4,))]
    assert conflicting_identical(encodings, np.array([0, 1, 1, 1, 0])) == 2


def test_cross_entropy_matches_definition() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, 3.0]])
    labels = np.array([0, 1, 0])
    expected = [
        -np.log(np.exp(2) / (np.exp(2) + 1)),
        np.log(2),
        -np.log(np.exp(-1) / (np.exp(-1) + np.exp(3))),
    ]
    np.testing.assert_allclose(cross_entropy(logits, labels), expected, rtol=1e-6)


def test_fine_tune_a_local_pretrained_directory(planted_files: dict, tmp_path: Path) -> None:
    from dataclasses import replace

    from tests.models.test_checkpoint import _hf_directory

    directory = _hf_directory(tmp_path / "hf")
    from codeaudit.config import TrainConfig

    config = TrainConfig(
        data=str(planted_files["train"]),
        output=str(tmp_path / "ft.pt"),
        arch="transformer",
        pretrained=str(directory),
        epochs=1,
        max_len=64,
        val_split=0.0,
        device="cpu",
    )
    _, result = api.train(config)
    assert result.hyperparameters["pretrained"] == str(directory)
    assert result.hyperparameters["lr"] == 2e-5
    report = api.predict(
        PredictConfig(model=str(tmp_path / "ft.pt"), data=str(planted_files["test"]))
    )
    assert report.n == 40
    with pytest.raises(UsageError):
        api.train(replace(config, arch="bigru", output=str(tmp_path / "x.pt")))


def test_transformer_sizes_come_from_the_size_flags(planted_files: dict, tmp_path: Path) -> None:
    """--embed-dim, --hidden-dim and --num-layers size the transformer too (width, feed-forward
    width, layers), are refused where they cannot apply, and leave the defaults as they were."""
    from click.testing import CliRunner

    from codeaudit.cli import cli
    from codeaudit.models.checkpoint import load_with
    from codeaudit.models.options import LoadOptions

    def train(*flags: str) -> tuple[int, str, Path]:
        out = tmp_path / f"t{len(list(tmp_path.iterdir()))}.pt"
        args = ["train", str(planted_files["train"]), "--arch", "transformer", "--epochs", "1"]
        args += ["--max-len", "32", "--min-freq", "1", "-q", "-o", str(out), *flags]
        result = CliRunner().invoke(cli, args)
        return result.exit_code, result.stderr, out

    def sizes(path: Path) -> tuple[int, int, int]:
        hf = load_with(str(path), LoadOptions(), device="cpu").model.module.config
        return hf.hidden_size, hf.intermediate_size, hf.num_hidden_layers

    code, err, small = train("--embed-dim", "32", "--hidden-dim", "48", "--num-layers", "1")
    assert code == 0, err
    assert sizes(small) == (32, 48, 1)
    code, err, default = train()
    assert code == 0, err
    assert sizes(default) == (128, 256, 2)
    code, err, _ = train("--embed-dim", "30")
    assert code == 2 and "--embed-dim 30" in err and "4 attention heads" in err
    code, err, _ = train("--hidden-dim", "64", "--pretrained", str(tmp_path))
    assert code == 2 and "--hidden-dim" in err and "--pretrained" in err
