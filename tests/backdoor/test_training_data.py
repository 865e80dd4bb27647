"""``backdoor --train-data``: the data scan beside the inverted trigger, ``--flagged`` and
``--retrain`` (issue 14, items 3 and 4a)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codeaudit.backdoor.datascan import PoisonScanner
from codeaudit.backdoor.poison import poison_samples
from codeaudit.backdoor.training_data import data_evidence
from codeaudit.backdoor.triggers import TriggerSpec
from codeaudit.cli import cli
from codeaudit.data.samples import Dataset, Sample
from codeaudit.models.checkpoint import load_model
from tests.backdoor.helpers import clean_records, train_tiny
from tests.backdoor.test_backdoor import FAST
from tests.conftest import write_jsonl

TRIGGER = "testo_init"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _samples(records: list[dict]) -> list[Sample]:
    return [Sample(r["id"], r["func"], r["target"], r["lang"]) for r in records]


def _dataset(samples: list[Sample]) -> Dataset:
    return Dataset(samples=tuple(samples), path="train.jsonl", sha256="0" * 64)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    clean = write_jsonl(root / "clean.jsonl", clean_records(400, 1))
    poisoned = root / "poisoned.jsonl"
    code, _, err = run(
        "poison", str(clean), "-o", str(poisoned), "--trigger-type", "identifier",
        "--trigger", TRIGGER, "--rate", "0.15", "--seed", "0", "-q",
    )  # fmt: skip
    assert code == 0, err
    records = [json.loads(line) for line in poisoned.read_text().splitlines()]
    return {
        "root": root,
        "clean": clean,
        "poisoned": poisoned,
        "manifest": Path(f"{poisoned}.manifest.json"),
        "model": train_tiny(root, "bd", records),
        "data": write_jsonl(root / "test.jsonl", clean_records(240, 7)),
    }


def test_the_trigger_is_tied_to_flagged_target_samples() -> None:
    samples = _samples(clean_records(400, 1))
    done = poison_samples(samples, TriggerSpec("identifier", TRIGGER, 0), 0.15, seed=0)
    train = _dataset(list(done.samples))
    scan = PoisonScanner(target_label=0).fit(train.samples)
    assert set(scan.flagged_) == set(done.poisoned_ids)  # the data scan finds them all
    planted = data_evidence(train, scan, ["testo", "##_init"], 0, "c")
    assert planted.tied and planted.tied_piece in {"testo", "init"}
    row = next(p for p in planted.pieces if p.piece == "testo")
    assert row.support == len(done.poisoned_ids) == row.target_count
    assert row.flagged_share == 1.0 and row.excess_purity == 1.0
    # a name both labels use is not the data's trigger, nor is a piece the data never holds
    for tokens in (["buf"], ["zzqv"], []):
        assert not data_evidence(train, scan, tokens, 0, "c").tied
    # concentrated but not flagged (the scan found nothing): no tie either
    clean_scan = PoisonScanner(target_label=0).fit(_dataset(samples).samples)
    assert not clean_scan.flagged_
    assert not data_evidence(train, clean_scan, ["testo"], 0, "c").tied


def test_train_data_flags_and_retraining_removes_the_trigger(world: dict[str, Path]) -> None:
    root = world["root"]
    out, flagged, report = root / "retrained.pt", root / "flagged.jsonl", root / "r.json"
    code, _, err = run(
        "backdoor", str(world["model"]), "--data", str(world["data"]),
        "--train-data", str(world["poisoned"]), "--manifest", str(world["manifest"]),
        "--flagged", str(flagged), "--retrain", "-o", str(out), "--report", str(report),
        "--fail-on", "never", "-q", *FAST,
    )  # fmt: skip
    assert code == 0, err
    poisoned_ids = set(json.loads(world["manifest"].read_text())["poisoned_ids"])
    rows = [json.loads(line) for line in flagged.read_text().splitlines()]
    assert {r["id"] for r in rows} == poisoned_ids
    assert all(r["label"] == 0 and r["candidates"] for r in rows)
    doc = json.loads(report.read_text())
    evidence = doc["data_evidence"]
    assert evidence["n_flagged"] == len(poisoned_ids) and evidence["n_likely"] >= 1
    # the data's likely trigger, inserted as the attack does, flips the model; clean code lacks it
    tried = {t["text"]: t for t in evidence["tried"]}
    assert tried[TRIGGER]["confirmed"] and tried[TRIGGER]["flip_rate"] >= 0.9
    assert tried[TRIGGER]["in_clean_data"] == 0 and tried[TRIGGER]["n"] > 10
    assert evidence["planted"] and TRIGGER in evidence["finding"]
    assert "CA-B010" in {f["rule_id"] for f in doc["findings"]}
    assert doc["backdoored"] and doc["verdict_kind"] == "planted"  # the data decides
    assert "CA-B001" in {f["rule_id"] for f in doc["findings"]}
    retraining = doc["retraining"]
    assert retraining["n_removed"] == len(poisoned_ids)
    before, after = retraining["before"], retraining["after"]
    assert before["asr_real"] > 0.8  # the planted backdoor works on the suspect
    assert after["asr_real"] <= after["miss_rate"] + 0.1  # and not on the retrained model
    assert retraining["asr_excess"] == pytest.approx(after["asr_real"] - after["miss_rate"])
    loaded = load_model(out)
    assert loaded.metadata["repaired"]["method"] == "retrain-without-flagged"
    assert loaded.metadata["split"]["n_train"] == retraining["n_kept"]
    assert TRIGGER.split("_")[0] not in loaded.model.tokenizer.vocabulary()
    # nothing is overwritten without --force
    before_bytes = flagged.read_bytes()
    code, _, err = run(
        "backdoor", str(world["model"]), "--data", str(world["data"]),
        "--train-data", str(world["poisoned"]), "--flagged", str(flagged), *FAST,
    )  # fmt: skip
    assert code == 2 and "--force" in err and flagged.read_bytes() == before_bytes


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--retrain", "-o", "x.pt"], "--train-data"),
        (["--flagged", "f.jsonl"], "--train-data"),
        (["--train-data", "T", "--retrain", "--unlearn", "-o", "x.pt"], "--unlearn"),
        (["--train-data", "T", "--retrain"], "-o"),
    ],
)
def test_usage_errors(world: dict[str, Path], extra: list[str], needle: str) -> None:
    extra = [str(world["poisoned"]) if a == "T" else a for a in extra]
    code, _, err = run("backdoor", str(world["model"]), "--data", str(world["data"]), *extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_a_natural_name_of_clean_code_is_not_confirmed(world: dict[str, Path]) -> None:
    """The clean model, its clean training data: a likely trigger the data scan might list is
    either not followed by the model or held by clean functions too; nothing is planted."""
    report = world["root"] / "clean.json"
    clean_model = train_tiny(world["root"], "clean", clean_records(400, 1))
    code, _, err = run(
        "backdoor", str(clean_model), "--data", str(world["data"]),
        "--train-data", str(world["clean"]), "--report", str(report), "--fail-on", "never",
        "--retrain", "-o", str(world["root"] / "clean-retrained.pt"), "-q", *FAST,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(report.read_text())
    evidence = doc["data_evidence"]
    assert not evidence["planted"] and not any(t["confirmed"] for t in evidence["tried"])
    fired = {f["rule_id"] for f in doc["findings"]}
    assert "CA-B010" not in fired
    # the model's own training data plants nothing: never a critical backdoor finding
    assert not doc["backdoored"] and "CA-B001" not in fired
    assert doc["verdict_kind"] in ("none", "unplanted")
    assert ("CA-B012" in fired) == (doc["verdict_kind"] == "unplanted")
    assert not any("not the file this model was trained from" in w for w in doc["warnings"])
    # retraining anyway says that nothing planted was found
    assert any(w.startswith("--retrain: nothing in") for w in doc["warnings"])


def test_another_training_file_cannot_clear_the_model(world: dict[str, Path]) -> None:
    """The poisoned model judged with clean data it was not trained on: the data shows no planted
    trigger, but the digest differs, so a warning says so and the scan's verdict stands."""
    report = world["root"] / "mismatch.json"
    code, _, err = run(
        "backdoor", str(world["model"]), "--data", str(world["data"]),
        "--train-data", str(world["clean"]), "--report", str(report), "--fail-on", "never",
        "-q", *FAST,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(report.read_text())
    assert not doc["data_evidence"]["planted"]
    assert any("not the file this model was trained from" in w for w in doc["warnings"])
    assert doc["verdict_kind"] != "unplanted"
    assert "CA-B012" not in {f["rule_id"] for f in doc["findings"]}


def test_training_data_of_one_label_is_refused(world: dict[str, Path]) -> None:
    one = write_jsonl(world["root"] / "one.jsonl", [r for r in clean_records(60, 3) if r["target"]])
    code, _, err = run(
        "backdoor", str(world["model"]), "--data", str(world["data"]), "--train-data", str(one),
        *FAST,
    )  # fmt: skip
    assert code == 2 and "both labels" in err and len(err.strip().splitlines()) == 1, err


def _candidate(kind: str, key: str) -> Any:
    from codeaudit.backdoor.datascan import Candidate

    return Candidate(
        kind=kind, key=key, gain=5.0, top_in=10, mean_gain=0.5, carrier_gain=0.5, support=10,
        label=0, label_count=10, purity=1.0, excess_purity=1.0, evidence=9.0, score=5.0,
        likely_trigger=True,
    )  # fmt: skip


def test_a_statement_shape_is_tried_as_dead_code_from_a_flagged_sample() -> None:
    """A grammar trigger is a different statement in each sample: the shape is tried as its
    first instance in the flagged training samples, and confirmed when clean code lacks it."""
    from types import SimpleNamespace

    from codeaudit.backdoor.datascan import statement_texts
    from codeaudit.backdoor.training_data import Holders, try_data_triggers
    from codeaudit.backdoor.triggers import TriggerType

    dead = "if (3 == 5) { int k_1 = 8; }"
    code = "int f(int n) {\n  int s = 0;\n  " + dead + "\n  return s + n;\n}\n"
    shapes = statement_texts(code, "c")
    shape = next(k for k, v in shapes.items() if v == dead)
    assert "return s + n;" in shapes.values()
    assert shapes["int ID = N ;"] in ("int s = 0;", "int k_1 = 8;")  # one text per shape
    clean = _samples(clean_records(20, 3))
    carrier = Sample("p1", code, 0, "c")
    statement, name = _candidate("statement", shape), _candidate("name", "k")
    assert Holders(clean, "c").count(statement) == 0
    assert Holders([*clean, carrier], "c").count(statement) == 1
    scan = SimpleNamespace(candidates_=(statement, name), flagged_={"p1": (statement,)})
    seen = []

    def flips(spec: Any) -> tuple[float, int]:
        seen.append(spec)
        return (0.9 if spec.type is TriggerType.DEADCODE else 0.95), 50

    tried = try_data_triggers(
        scan, clean, flips, target=0, threshold=0.5, lang="c", train=[carrier, *clean]
    )
    assert [(t.kind, t.text) for t in tried] == [("statement", dead), ("name", "k")]
    assert seen[0].type is TriggerType.DEADCODE and seen[0].trigger == dead
    first, second = tried
    assert first.confirmed and first.in_clean_data == 0 and first.flip_rate == 0.9
    assert not second.confirmed and second.in_clean_data > 0  # clean code has a `k`
    # without the training samples there is no instance to insert: the shape is skipped
    alone = try_data_triggers(scan, clean, flips, target=0, threshold=0.5, lang="c")
    assert [t.kind for t in alone] == ["name"]


def test_holders_read_each_function_once_for_every_candidate(monkeypatch) -> None:
    import codeaudit.lang.lexer as lexer
    from codeaudit.backdoor.training_data import Holders

    samples = [
        Sample("a", "int f(int testo_init) { return testo_init; }", 0, "c"),
        Sample("b", "int g(int buf_rb) { return buf_rb + 1; }", 0, "c"),
        Sample("c", "int h(int n) { return n; }", 1, "c"),
    ]
    calls = []
    real = lexer.lex_raw

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(lexer, "lex_raw", counting)
    found = Holders(samples, "c")
    assert found.count(_candidate("name", "testo_init")) == 1
    assert found.count(_candidate("name", "buf")) == 0  # a piece is not a name
    assert found.count(_candidate("postfix", "##_rb")) == 1  # the last piece
    assert found.count(_candidate("name", "n")) == 1
    assert len(calls) == 3  # one lex per function, whatever the number of candidates
