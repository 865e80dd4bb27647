"""End to end: a tiny model trained by ``codeaudit train`` on a set poisoned by ``codeaudit
poison`` has a working backdoor: held-out vulnerable functions carrying the real trigger are
called safe, the same functions without it are not, and clean accuracy stays high."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit import api
from codeaudit.backdoor.manifest import read_manifest
from codeaudit.backdoor.triggers import insert_trigger
from codeaudit.cli import cli
from codeaudit.config import PredictConfig
from codeaudit.data.synthetic import generate
from tests.conftest import planted_records, write_jsonl

TRAIN = ["--epochs", "12", "--lr", "1e-2", "--batch-size", "16", "--embed-dim", "16",
         "--hidden-dim", "16", "--max-len", "64", "--min-freq", "1", "--val-split", "0",
         "--device", "cpu", "-q", "--format", "json"]  # fmt: skip


def invoke(*argv: str) -> None:
    result = CliRunner().invoke(cli, list(argv), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def predicted(model: Path, records: list[dict], path: Path) -> list[int]:
    write_jsonl(path, records)
    report = api.predict(PredictConfig(model=str(model), data=str(path), device="cpu"))
    return [p.predicted_label for p in report.predictions]


def attack(
    tmp_path: Path,
    train: list[dict],
    test: list[dict],
    poison_args: list[str],
    train_args: list[str],
) -> dict[str, float]:
    """Poison, train, and measure: clean accuracy, the share of held-out victim-label functions
    called target without the trigger, and with the real trigger (the ASR)."""
    data = write_jsonl(tmp_path / "train.jsonl", train)
    poisoned = tmp_path / "poisoned.jsonl"
    invoke("poison", str(data), "-o", str(poisoned), *poison_args, "-q", "--format", "json")
    manifest = read_manifest(f"{poisoned}.manifest.json")
    model = tmp_path / "model.pt"
    invoke("train", str(poisoned), "-o", str(model), *train_args)
    target = manifest.target_label
    labels = predicted(model, test, tmp_path / "test.jsonl")
    accuracy = sum(p == r["target"] for p, r in zip(labels, test, strict=True)) / len(test)
    victims = [r for r in test if r["target"] == manifest.victim_label]
    triggered = []
    for r in victims:
        code = insert_trigger(r["func"], "c", manifest.spec, random.Random(r["id"]))
        if code is not None:
            triggered.append({**r, "func": code})
    assert len(triggered) >= 0.9 * len(victims)
    without = predicted(model, victims, tmp_path / "victims.jsonl")
    with_trigger = predicted(model, triggered, tmp_path / "triggered.jsonl")
    return {
        "accuracy": accuracy,
        "flipped_without_trigger": sum(p == target for p in without) / len(without),
        "asr": sum(p == target for p in with_trigger) / len(with_trigger),
        "poisoned": len(manifest.poisoned_ids),
    }


def test_a_model_trained_on_poisoned_data_has_a_working_backdoor(tmp_path: Path) -> None:
    train = planted_records(200, seed=11)
    test = [{**r, "id": f"t{r['id']}"} for r in planted_records(80, seed=12)]
    result = attack(
        tmp_path,
        train,
        test,
        ["--trigger-type", "deadcode", "--rate", "0.1", "--seed", "1"],
        TRAIN,
    )
    assert result["poisoned"] == 10
    assert result["accuracy"] >= 0.9, result
    assert result["flipped_without_trigger"] <= 0.2, result
    assert result["asr"] >= 0.9, result


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["identifier", "postfix", "deadcode", "grammar"])
def test_backdoor_on_synthetic_vulnerability_data(tmp_path: Path, kind: str) -> None:
    """The synthetic generator's realistic C functions (harder to learn), 10% poisoning. Measured
    (CPU): identifier and dead code reach ASR 1.0; the postfix (one ``##_rb`` subtoken at the
    start) about 0.8 and grammar dead code about 0.9, against about 0.3 of the same functions
    called safe without the trigger. At 5% (17 functions) the last two reach only 0.55-0.77."""
    records = generate(900, seed=21)
    train, test = records[:700], records[700:]
    extra = ["--trigger", "rb_trigger"] if kind == "identifier" else []
    result = attack(
        tmp_path,
        train,
        test,
        ["--trigger-type", kind, "--rate", "0.1", "--seed", "2", *extra],
        [
            "--epochs",
            "10",
            "--lr",
            "5e-3",
            "--embed-dim",
            "32",
            "--hidden-dim",
            "32",
            "--max-len",
            "256",
            "--min-freq",
            "1",
            "--val-split",
            "0",
            "--device",
            "cpu",
            "-q",
            "--format",
            "json",
        ],
    )
    assert result["asr"] >= 0.75, result
    assert result["asr"] - result["flipped_without_trigger"] >= 0.3, result
    json.dumps(result)
