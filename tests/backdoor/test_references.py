"""Clean reference models in the backdoor scan: a planted trigger flips the suspect and not the
references, a natural name flips both (adversarial, not backdoored), the penalised objective,
what references train on, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codeaudit.backdoor.gcg import REFERENCE_BOUND, PenalisedObjective, gcg
from codeaudit.cli import cli
from codeaudit.data.loader import dataset_from_records
from codeaudit.errors import BackdoorError
from codeaudit.models.checkpoint import load_model, save_checkpoint
from tests.backdoor.helpers import clean_records, natural_records, poison, train_tiny
from tests.backdoor.test_backdoor import FAST, key_objective
from tests.conftest import write_jsonl


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _references(suspect: Path, records: list[dict], root: Path, name: str) -> list[Path]:
    """Two clean models of the suspect's recipe and tokenizer, trained here as --references
    would (same code), written as checkpoints to pass with --reference-model."""
    from codeaudit.backdoor.references import train_reference_models

    loaded = load_model(suspect)
    data = dataset_from_records(records)
    models, _ = train_reference_models(loaded.model, loaded.metadata, data, 2, seed=0)
    paths = []
    for k, model in enumerate(models):
        path = root / f"{name}-ref{k}.pt"
        save_checkpoint(model, path, metadata={"hyperparameters": {}})
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("references")
    bd = train_tiny(root, "bd", poison(clean_records(400, 1), 0.12))
    natural = train_tiny(root, "natural", natural_records(400, 1))
    return {
        "root": root,
        "bd": bd,
        "bd_refs": _references(bd, clean_records(200, 11), root, "bd"),
        "data": write_jsonl(root / "test.jsonl", clean_records(240, 7)),
        "natural": natural,
        "natural_refs": _references(natural, natural_records(200, 11), root, "natural"),
        "natural_data": write_jsonl(root / "natural.jsonl", natural_records(240, 7)),
    }


def _scan(model: Path, data: Path, refs: list[Path], *extra: str) -> tuple[int, dict, str]:
    given = [a for path in refs for a in ("--reference-model", str(path))]
    code, stdout, err = run(
        "backdoor", str(model), "--data", str(data), *FAST, *given, "-q", "--format", "json",
        *extra,
    )  # fmt: skip
    assert code in (0, 1), err
    return code, json.loads(stdout), err


def test_a_planted_trigger_flips_the_suspect_and_not_the_references(world: dict) -> None:
    _, doc, _ = _scan(world["bd"], world["data"], world["bd_refs"])
    pair = next(p for p in doc["pairs"] if p["victim_label"] == 1)
    assert any("trig" in t for t in pair["anchored_tokens"]), pair["anchored_tokens"]
    assert pair["flip_rate"] >= 0.9
    assert len(pair["reference_flip_rates"]) == 2 and len(pair["reference_n"]) == 2
    assert pair["reference_flip_max"] <= 0.2  # clean models ignore the planted name
    assert pair["reference_flip_max"] == max(pair["reference_flip_rates"])
    assert pair["reference_penalty"] is not None and pair["suspect_loss"] == pair["anchored_loss"]
    assert pair["kind"] == "planted" and pair["backdoored"]
    assert doc["backdoored"] is True and doc["verdict_kind"] == "planted"
    assert [r["source"] for r in doc["references"]] == ["given", "given"]
    assert "CA-B001" in {f["rule_id"] for f in doc["findings"]}
    assert "clean reference models" in doc["verdict"]


def test_a_natural_name_flips_the_references_too_and_is_not_a_backdoor(world: dict) -> None:
    """The clean model's label-pure `safeIdx` (searched with --keep-shortcuts, where the scan
    without references calls the model backdoored) flips clean models of its recipe as much:
    adversarial, not planted."""
    _, alone, _ = _scan(world["natural"], world["natural_data"], [], "--keep-shortcuts")
    assert alone["backdoored"] is True  # what references correct
    _, doc, _ = _scan(world["natural"], world["natural_data"], world["natural_refs"],
                      "--keep-shortcuts")  # fmt: skip
    pair = next(p for p in doc["pairs"] if p["victim_label"] == 1)
    assert pair["flip_rate"] >= 0.5 and pair["kind"] == "adversarial"
    assert pair["reference_flip_max"] >= 0.5 * pair["flip_rate"]
    assert doc["backdoored"] is False and doc["verdict_kind"] == "adversarial"
    assert {f["rule_id"] for f in doc["findings"]} == {"CA-B008"}
    assert doc["verdict"].startswith("Adversarial fragility")
    # and the default scan (shortcuts set aside) with references: no backdoor either
    _, default, _ = _scan(world["natural"], world["natural_data"], world["natural_refs"])
    assert default["backdoored"] is False


def test_the_reference_columns_are_in_the_report(world: dict, tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    given = [a for path in world["bd_refs"] for a in ("--reference-model", str(path))]
    code, _, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), *FAST, "--steps", "8",
        *given, "--reference-weight", "1", "-q", "--report", str(report), "--format", "markdown",
    )  # fmt: skip
    assert code in (0, 1), err
    text = report.read_text()
    assert "--reference-weight 1" in text  # a planted call found by a penalised search
    assert "flip (references)" in text and "Clean reference models" in text
    assert str(world["bd_refs"][1]) in text


# -- the objective -------------------------------------------------------------------------------


def test_the_penalty_steers_the_search_away_from_triggers_that_flip_a_reference() -> None:
    model, suspect = key_objective()
    free = gcg(suspect, length=3, steps=20, topk=8, candidates=8, seed=5)
    assert model.key in free.trigger
    _, reference = key_objective()  # a reference that obeys the same key
    penalised = PenalisedObjective(suspect, [reference], weight=5.0)
    key = np.asarray([[model.key, 3, 4]])
    flipped = np.maximum(REFERENCE_BOUND - reference.sample_losses(key), 0).mean()
    assert penalised.losses(key)[0] == pytest.approx(suspect.losses(key)[0] + 5.0 * flipped)
    assert penalised.penalty(key)[0] > 0.5
    steered = gcg(penalised, length=3, steps=20, topk=8, candidates=8, seed=5)
    assert model.key not in steered.trigger
    # weight 0: the suspect's objective exactly
    plain = PenalisedObjective(suspect, [reference], weight=0.0)
    assert gcg(plain, length=3, steps=20, topk=8, candidates=8, seed=5).trigger == free.trigger


def test_references_never_train_on_what_the_scan_judges() -> None:
    from codeaudit.backdoor.references import MIN_REFERENCE_TRAIN, trusted_training_set

    records = clean_records(60, 3)
    records[5] = {**records[5], "pair": "p1"}
    records[6] = {**records[6], "pair": "p1"}
    records[7] = {**records[7], "func": records[0]["func"], "id": "copy"}
    trusted = dataset_from_records(records)
    judged = [trusted.samples[0], trusted.samples[5]]
    kept = {s.id for s in trusted_training_set(trusted, judged)}
    left_out = {trusted.samples[i].id for i in (0, 5, 6, 7)}  # id, pair, same code
    assert not kept & left_out and len(kept) == 60 - 4
    with pytest.raises(BackdoorError, match="--reference-data"):
        trusted_training_set(trusted, list(trusted.samples)[: 60 - MIN_REFERENCE_TRAIN + 1])


# -- bad input ----------------------------------------------------------------------------------


def _relabelled(path: Path, out: Path) -> Path:
    payload = torch.load(path, weights_only=True)
    payload["labels"] = ["safe", "unsafe"]
    torch.save(payload, out)
    return out


def test_a_reference_of_another_task_is_refused(world: dict, tmp_path: Path) -> None:
    wrong = _relabelled(world["bd_refs"][0], tmp_path / "wrong.pt")
    code, stdout, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), "--reference-model",
        str(wrong), "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and stdout == ""
    assert "labels" in err and "same task" in err


def test_a_reference_with_another_tokenizer_is_refused(world: dict) -> None:
    code, _, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), "--reference-model",
        str(world["natural"]), "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "tokenizer differs" in err


def test_references_need_labelled_trusted_data(world: dict, tmp_path: Path) -> None:
    unlabelled = write_jsonl(
        tmp_path / "u.jsonl", [{"id": r["id"], "func": r["func"]} for r in clean_records(40, 2)]
    )
    code, _, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), "--references", "2",
        "--reference-data", str(unlabelled), "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "label" in err
    one_label = write_jsonl(
        tmp_path / "one.jsonl", [r for r in clean_records(40, 2) if r["target"] == 0]
    )
    code, _, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), "--references", "2",
        "--reference-data", str(one_label), "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "both labels" in err
    code, _, err = run(
        "backdoor", str(world["bd"]), "--data", str(world["data"]), "--reference-data",
        str(one_label), "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "--references" in err


def test_a_recipe_past_its_bounds_is_refused_before_the_scan(world: dict, tmp_path: Path) -> None:
    payload = torch.load(world["bd"], weights_only=True)
    payload["metadata"]["hyperparameters"]["epochs"] = 100_000
    torch.save(payload, tmp_path / "greedy.pt")
    code, _, err = run(
        "backdoor", str(tmp_path / "greedy.pt"), "--data", str(world["data"]), "--references",
        "2", "-q",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "hyperparameters.epochs" in err


@pytest.mark.slow
def test_trained_references_are_the_same_serial_and_with_workers(world: dict) -> None:
    trusted = write_jsonl(world["root"] / "trusted.jsonl", clean_records(200, 11))
    docs = []
    for workers in ("1", "2"):
        code, stdout, err = run(
            "backdoor", str(world["bd"]), "--data", str(world["data"]), *FAST, "--steps", "5",
            "--references", "2", "--reference-data", str(trusted), "--workers", workers,
            "--threads", "1", "-q", "--format", "json",
        )  # fmt: skip
        assert code in (0, 1), err
        docs.append(json.loads(stdout))
    timeless = [[{k: v for k, v in p.items() if k != "seconds"} for p in d["pairs"]] for d in docs]
    assert timeless[0] == timeless[1]
    assert docs[0]["references"] == docs[1]["references"]
    assert [r["source"] for r in docs[0]["references"]] == ["trained", "trained"]
    # the trusted functions less those with the code of a judged one (this generator repeats)
    assert all(20 <= r["n_train"] <= 200 for r in docs[0]["references"])
