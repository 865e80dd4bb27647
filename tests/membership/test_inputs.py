"""Membership inputs that would make the audit wrong: members that were held out for validation
(or never trained on), non-members that were trained on, and non-members from another
distribution (the blind baseline)."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from codeaudit.api import membership as run_membership
from codeaudit.cli import cli
from codeaudit.config import MembershipConfig
from codeaudit.data.samples import Dataset, Sample
from codeaudit.data.split_record import LIMIT, SplitRecord, fingerprint, split_record
from codeaudit.data.synthetic import generate
from codeaudit.errors import DataError
from codeaudit.membership.inputs import verify_inputs
from tests.conftest import write_jsonl

TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "96", "--min-freq", "1"]
FAST = {"features": "loss", "classifiers": ("logreg",), "boundary_samples": 0, "n_boot": 20}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def other_distribution(n: int, seed: int) -> list[dict[str, Any]]:
    """Functions unlike the synthetic data set's: random identifiers, another shape."""
    rng = random.Random(seed)

    def name() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 12)))

    records = []
    for i in range(n):
        a, b, c = name(), name(), name()
        code = (
            f"static long {a}(long {b}) {{\n    long {c} = {b} * {rng.randint(2, 99)};\n"
            f"    if ({c} > {rng.randint(100, 999)}) {{ {c} = {name()}({c}); }}\n"
            f"    return {c} + {b};\n}}\n"
        )
        records.append({"id": f"other-{i}", "func": code, "target": i % 2, "lang": "c"})
    return records


@pytest.fixture(scope="module")
def split_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A BiGRU trained on one file with a 20% validation split held out of it (the README's
    old path to the mistake: the same file then passed as --members)."""
    root = tmp_path_factory.mktemp("split")
    records = generate(300, seed=5)
    data = write_jsonl(root / "train.jsonl", records[:200])
    same = write_jsonl(root / "same.jsonl", records[200:])
    other = write_jsonl(root / "other.jsonl", other_distribution(100, seed=1))
    model = root / "model.pt"
    code, _, err = run(
        "train", str(data), "-o", str(model), "--val-split", "0.2", "--epochs", "4", "-q", *TINY
    )
    assert code == 0, err
    return {"root": root, "data": data, "same": same, "other": other, "model": model}


def recorded(model: Path) -> dict[str, Any]:
    payload = torch.load(model, map_location="cpu", weights_only=True)  # plain data only
    return payload["metadata"]


def test_train_records_its_split_as_fingerprints(split_model: dict[str, Path]) -> None:
    metadata = recorded(split_model["model"])
    split = metadata["split"]
    assert metadata["val_source"] == "split" and "train_ids_sha256" in metadata
    assert (split["n_train"], split["n_val"]) == (metadata["n_train"], metadata["n_val"])
    assert len(split["train"]) == metadata["n_train"] and len(split["val"]) == metadata["n_val"]
    assert split["train"] == sorted(split["train"]) and not set(split["train"]) & set(split["val"])
    codes = [json.loads(line)["func"] for line in split_model["data"].read_text().splitlines()]
    assert set(split["train"]) | set(split["val"]) == {fingerprint(c) for c in codes}
    text = split_model["model"].read_bytes()
    assert codes[0].encode() not in text  # fingerprints, never code


def test_members_held_out_for_validation_are_counted_and_left_out(
    split_model: dict[str, Path],
) -> None:
    metadata = recorded(split_model["model"])
    result = run_membership(
        MembershipConfig(
            model=str(split_model["model"]),
            members=str(split_model["data"]),  # the whole file: training and validation
            nonmembers=str(split_model["same"]),
            device="cpu",
            **FAST,
        )
    )
    check = result.inputs
    assert check is not None and check.recorded == "full"
    assert check.members_given == 200 and check.members_held_out == metadata["n_val"] > 0
    assert check.members_unseen == 0 and check.nonmembers_trained == 0
    assert check.dropped_members == metadata["n_val"] and check.dropped_nonmembers == 0
    assert result.n_members == metadata["n_train"] and result.n_nonmembers == 100
    held = next(w for w in result.warnings if "held out for validation" in w)
    assert held.startswith(f"{metadata['n_val']} of 200 --members ({split_model['data']})")
    assert "left them out" in held and "--val FILE" in held
    # same-distribution non-members: no shift, and a tokenizer leak is called a leak
    assert result.blind_baseline is not None and not result.distribution_shift
    assert result.blind_baseline.row.auc < 0.7
    assert not any("DISTRIBUTION SHIFT" in w for w in result.warnings)
    assert result.risk != "not-measurable"
    assert "CA-M006" not in {f.rule_id for f in result.findings}


def test_nonmembers_from_another_distribution_make_the_audit_not_measurable(
    split_model: dict[str, Path], tmp_path: Path
) -> None:
    report = tmp_path / "m.json"
    code, out, err = run(
        "membership",
        str(split_model["model"]),
        "--members",
        str(split_model["data"]),
        "--nonmembers",
        str(split_model["other"]),
        "--features",
        "loss",
        "--bootstrap",
        "20",
        "-o",
        str(report),
        "-q",
    )
    assert code == 1, err
    data = json.loads(report.read_text())
    assert data["distribution_shift"] is True and data["risk"] == "not-measurable"
    assert data["blind_baseline"]["row"]["auc"] >= 0.95 and data["blind_baseline"]["shift"]
    assert data["verdict"].startswith("Not measurable: distribution shift.")
    assert data["warnings"][0].startswith("DISTRIBUTION SHIFT: a model-free baseline")
    assert "CA-M006" in {f["rule_id"] for f in data["findings"]}
    assert "blind" not in {a["family"] for a in data["attacks"]}  # never ranked as an attack
    tokenizer = [w for w in data["warnings"] if "unknown-token rate" in w]
    assert not tokenizer or "the shift at least as much as a tokenizer leak" in tokenizer[0]
    assert data["inputs"]["members_held_out"] == recorded(split_model["model"])["n_val"]
    assert "not measurable" in out


def test_nonmembers_that_were_trained_on_are_left_out(split_model: dict[str, Path]) -> None:
    lines = split_model["data"].read_text().splitlines()
    record = SplitRecord.from_metadata(recorded(split_model["model"]))
    assert record is not None
    trained = [line for line in lines if record.trained_on(json.loads(line)["func"])]
    nonmembers = split_model["root"] / "mixed.jsonl"
    nonmembers.write_text(
        "\n".join(split_model["same"].read_text().splitlines() + trained[:7]) + "\n"
    )
    result = run_membership(
        MembershipConfig(
            model=str(split_model["model"]),
            members=str(split_model["data"]),
            nonmembers=str(nonmembers),
            device="cpu",
            **FAST,
        )
    )
    assert result.inputs is not None and result.inputs.nonmembers_trained == 7
    assert result.n_nonmembers == 100
    assert any(w.startswith("7 of 107 --nonmembers") for w in result.warnings)


def _old_checkpoint(model: Path, target: Path) -> Path:
    """The checkpoint as a codeaudit that did not record its split would have written it."""
    payload = torch.load(model, map_location="cpu", weights_only=True)
    for key in ("split", "val_source"):
        payload["metadata"].pop(key)
    torch.save(payload, target)
    return target


def test_older_checkpoint_without_a_split_still_loads_and_says_what_it_can(
    split_model: dict[str, Path], tmp_path: Path
) -> None:
    old = _old_checkpoint(split_model["model"], tmp_path / "old.pt")
    n_val = recorded(split_model["model"])["n_val"]
    result = run_membership(
        MembershipConfig(
            model=str(old),
            members=str(split_model["data"]),
            nonmembers=str(split_model["same"]),
            device="cpu",
            **FAST,
        )
    )
    check = result.inputs
    assert check is not None and check.recorded == "none"
    assert check.members_held_out == n_val and check.dropped_members == 0  # known, not which
    assert result.n_members == 200
    assert any(
        "is the file" in w and f"held out {n_val} of its samples" in w for w in result.warnings
    )
    # another members file: nothing to say, and nothing is said
    members = write_jsonl(
        tmp_path / "m.jsonl",
        [json.loads(x) for x in split_model["data"].read_text().splitlines()][:150],
    )
    quiet = run_membership(
        MembershipConfig(
            model=str(old),
            members=str(members),
            nonmembers=str(split_model["same"]),
            device="cpu",
            **FAST,
        )
    )
    assert quiet.inputs is not None and quiet.inputs.members_held_out is None
    assert not any("validation" in w or "trained from" in w for w in quiet.warnings)


def test_too_few_members_left_is_one_clear_error(split_model: dict[str, Path]) -> None:
    lines = split_model["data"].read_text().splitlines()
    record = SplitRecord.from_metadata(recorded(split_model["model"]))
    assert record is not None
    held = [line for line in lines if record.held_out(json.loads(line)["func"])]
    members = split_model["root"] / "held.jsonl"
    members.write_text("\n".join(held + lines[:3]) + "\n")
    code, _, err = run(
        "membership",
        str(split_model["model"]),
        "--members",
        str(members),
        "--nonmembers",
        str(split_model["same"]),
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"only 3 of {len(held) + 3} members are on the right side" in err


def _dataset(codes: list[str], path: str) -> Dataset:
    return Dataset(tuple(Sample(f"s{i}", c, label=i % 2) for i, c in enumerate(codes)), path=path)


def test_split_record_bound_and_unseen_members() -> None:
    train = _dataset([f"int f{i}() {{ return {i}; }}" for i in range(30)], "train")
    val = _dataset([f"int g{i}() {{ return {i}; }}" for i in range(5)], "val")
    full = split_record(train, val)
    assert full["limit"] == LIMIT and len(full["train"]) == 30 and len(full["val"]) == 5
    over = split_record(train, val, limit=10)
    assert over["train"] is None and len(over["val"]) == 5  # beyond the bound: validation only
    unseen = [f"long h{i}(void) {{ return {i}L; }}" for i in range(12)]
    members = _dataset([*train.codes[:20], *val.codes[:2], *unseen], "m.jsonl")
    nonmembers = _dataset([*unseen[:10], *train.codes[20:23]], "n.jsonl")
    verified = verify_inputs(members, nonmembers, "m.pt", {"split": full})
    check = verified.check
    assert (check.members_held_out, check.members_unseen, check.nonmembers_trained) == (2, 12, 3)
    assert len(verified.members) == 32 and len(verified.nonmembers) == 10  # unseen are kept
    assert check.dropped_members == 2 and check.dropped_nonmembers == 3
    assert any(
        w.startswith("12 of 34 --members (m.jsonl) are not among") for w in verified.warnings
    )
    bounded = verify_inputs(members, nonmembers, "m.pt", {"split": over}).check
    assert bounded.recorded == "validation" and bounded.members_held_out == 2
    assert bounded.members_unseen is None and bounded.nonmembers_trained is None
    assert verify_inputs(members, nonmembers, "m.pt", {}).check.recorded == "none"
    with pytest.raises(DataError, match="only 0 of 15 members"):
        verify_inputs(_dataset(val.codes * 3, "v.jsonl"), nonmembers, "m.pt", {"split": full})
