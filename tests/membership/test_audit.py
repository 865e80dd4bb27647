"""``codeaudit membership`` end to end on tiny models made in the test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from codeaudit import api
from codeaudit.api import membership as run_membership
from codeaudit.cli import cli
from codeaudit.config import MembershipConfig
from codeaudit.data.synthetic import generate
from codeaudit.io import sha256_file
from codeaudit.membership.features import all_feature_sets
from tests.conftest import planted_records, write_jsonl

TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "96"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def memorising_model(root: Path, n: int) -> dict[str, Path]:
    """A BiGRU that memorised random labels: members are known, non-members are guesses."""
    records = generate(2 * n, seed=11)
    rng = random.Random(3)
    for record in records:
        record["target"] = rng.randint(0, 1)
    members = write_jsonl(root / "members.jsonl", records[:n])
    nonmembers = write_jsonl(root / "nonmembers.jsonl", records[n:])
    model = root / "model.pt"
    args = ["train", str(members), "-o", str(model), "--val-split", "0", "--epochs", "25"]
    code, _, err = run(*args, "--lr", "0.01", "-q", *TINY)
    assert code == 0, err
    return {"root": root, "members": members, "nonmembers": nonmembers, "model": model}


@pytest.fixture(scope="module")
def overfit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return memorising_model(tmp_path_factory.mktemp("overfit"), 80)


SCHEMA = {
    "type": "object",
    "required": [
        "tool",
        "version",
        "command",
        "model",
        "members",
        "nonmembers",
        "attacks",
        "best",
        "utility",
        "findings",
        "verdict",
        "risk",
    ],
    "properties": {
        "command": {"const": "membership"},
        "attacks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "attack",
                    "features",
                    "auc",
                    "auc_ci",
                    "accuracy",
                    "precision",
                    "recall",
                    "f1",
                    "advantage",
                    "tpr_at_fpr",
                ],
                "properties": {
                    "auc": {"type": "number", "minimum": 0, "maximum": 1},
                    "auc_ci": {"type": "array", "minItems": 2, "maxItems": 2},
                    "tpr_at_fpr": {"type": "object", "required": ["0.01", "0.001"]},
                },
            },
        },
        "utility": {
            "type": "object",
            "required": [
                "members_accuracy",
                "members_f1",
                "nonmembers_accuracy",
                "nonmembers_f1",
                "generalization_gap",
            ],
        },
        "findings": {"type": "array"},
        "model": {"type": "object", "required": ["path", "sha256"]},
    },
}


def test_overfit_model_leaks_and_the_report_says_so(overfit: dict[str, Path], tmp_path: Path):
    report = tmp_path / "m.json"
    plot = tmp_path / "roc.png"
    code, out, err = run(
        "membership",
        str(overfit["model"]),
        "--members",
        str(overfit["members"]),
        "--nonmembers",
        str(overfit["nonmembers"]),
        "-o",
        str(report),
        "--plot",
        str(plot),
        "--thorough",
        "--top-risk",
        "5",
        "--bootstrap",
        "50",
        "-q",
    )
    assert code == 1, err  # findings at or above the default --fail-on
    assert "Membership inference (high risk)" in out
    data = json.loads(report.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["best"]["auc"] >= 0.9
    trained = {a["features"] for a in data["attacks"] if a["family"] == "trained"}
    # the 15 combinations, and the probabilities and label for k-NN and the SVM (--thorough)
    assert trained == {"+".join(fs) for fs in all_feature_sets()} | {"probs-label"}
    on_probs = {a["attack"] for a in data["attacks"] if a["features"] == "probs-label"}
    assert on_probs - {"trained-selected"} == {"trained-knn", "trained-svm"}
    assert "probs-label" in {row["features"] for row in data["by_features"]}
    # the settings count every set a trained attack read, the distance models' one included
    assert data["settings"]["feature_sets"] == len(all_feature_sets()) + 1
    rules = {f["rule_id"] for f in data["findings"]}
    assert "CA-M001" in rules
    assert data["utility"]["members_accuracy"] == 1.0
    best_score = max(a["auc"] for a in data["attacks"] if a["family"] != "label-only")
    correctness = next(a for a in data["attacks"] if a["attack"] == "label-only-correctness")
    assert best_score >= correctness["auc"]
    assert {a["attack"] for a in data["attacks"]} >= {"label-only-boundary", "threshold-loss"}
    assert len(data["top_risk"]) == 5
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["roc-plot"] == {"path": str(plot), "sha256": sha256_file(plot)}
    member_ids = {json.loads(line)["id"] for line in overfit["members"].read_text().splitlines()}
    assert {item["id"] for item in data["top_risk"]} <= member_ids


def test_reference_attacks_run(overfit: dict[str, Path]) -> None:
    result = run_membership(
        MembershipConfig(
            model=str(overfit["model"]),
            members=str(overfit["members"]),
            nonmembers=str(overfit["nonmembers"]),
            references=2,
            features="loss",
            classifiers=("logreg",),
            boundary_samples=0,
            n_boot=20,
            device="cpu",
        )
    )
    by_name = {a.attack: a for a in result.attacks}
    assert {"lira-online", "lira-offline", "rmia"} <= set(by_name)
    assert by_name["lira-online"].auc >= 0.8
    assert "reference_models" in result.timings
    combined = [a for a in result.attacks if a.features.endswith("+lira-online")]
    assert [(a.attack, a.family) for a in combined] == [("trained-logreg", "reference")]
    assert combined[0].features == "embedding+logits+loss+confidence+lira-online"
    assert combined[0].auc >= 0.8


@pytest.mark.slow
def test_lira_beats_trained_attacks_at_low_fpr(tmp_path: Path) -> None:
    overfit = memorising_model(tmp_path, 360)  # >= 100 non-members per fold for TPR at 1%
    result = run_membership(
        MembershipConfig(
            model=str(overfit["model"]),
            members=str(overfit["members"]),
            nonmembers=str(overfit["nonmembers"]),
            references=8,
            features="logits+loss",
            classifiers=("logreg", "gb"),
            boundary_samples=0,
            n_boot=20,
            device="cpu",
        )
    )
    by_name = {a.attack: a for a in result.attacks}
    assert {"lira-online", "lira-offline", "rmia"} <= set(by_name)
    assert by_name["lira-online"].auc >= 0.85
    lira = max(by_name[n].tpr_at_fpr["0.01"] for n in ("lira-online", "lira-offline"))
    best_trained = max(a.tpr_at_fpr["0.01"] for a in result.attacks if a.family == "trained")
    assert lira > best_trained


def test_generalising_model_shows_little_leakage(tmp_path: Path) -> None:
    members = write_jsonl(tmp_path / "m.jsonl", planted_records(120, seed=21))
    nonmembers = write_jsonl(tmp_path / "n.jsonl", planted_records(120, seed=22))
    model = tmp_path / "model.pt"
    code, _, err = run(
        "train",
        str(members),
        "-o",
        str(model),
        "--val-split",
        "0",
        "--epochs",
        "4",
        "--lr",
        "0.01",
        "-q",
        *TINY,
    )
    assert code == 0, err
    result = run_membership(
        MembershipConfig(
            model=str(model),
            members=str(members),
            nonmembers=str(nonmembers),
            features="loss,logits+loss",
            classifiers=("logreg",),
            boundary_samples=0,
            n_boot=50,
            device="cpu",
        )
    )
    model_rows = [a for a in result.attacks if a.attack != "threshold-unknown-tokens"]
    assert max(a.auc for a in model_rows) < 0.65, [(a.attack, a.auc) for a in model_rows]
    assert result.utility.generalization_gap < 0.1


def test_overlap_and_size_warnings(overfit: dict[str, Path], tmp_path: Path) -> None:
    import torch

    members = [json.loads(x) for x in overfit["members"].read_text().splitlines()]
    nonmembers = [json.loads(x) for x in overfit["nonmembers"].read_text().splitlines()]
    copied = dict(members[0], id="copy", func="  " + members[0]["func"].replace(" ", "   "))
    few = write_jsonl(tmp_path / "few.jsonl", [copied, *nonmembers[:19]])
    # a checkpoint that records no split (an older codeaudit): the overlap check finds the copy
    payload = torch.load(overfit["model"], map_location="cpu", weights_only=True)
    payload["metadata"].pop("split")
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    config = {
        "members": str(overfit["members"]),
        "nonmembers": str(few),
        "features": "loss",
        "classifiers": ("logreg",),
        "boundary_samples": 0,
        "n_boot": 10,
        "device": "cpu",
    }
    result = run_membership(MembershipConfig(model=str(old), **config))
    text = " ".join(result.warnings)
    assert "1 non-member functions are identical to a member" in text
    assert "differ 4.0x in size" in text
    # the checkpoint that records its split knows the copy is a training function: left out
    result = run_membership(MembershipConfig(model=str(overfit["model"]), **config))
    text = " ".join(result.warnings)
    assert "1 of 20 --nonmembers" in text and "identical to a member" not in text
    assert result.n_nonmembers == 19 and "differ 4.2x in size" in text


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        ("tiny", ["at least 10"]),
        ("one_class", ["both vulnerable and non-vulnerable"]),
        ("missing", ["not found"]),
    ],
)
def test_bad_membership_inputs_are_one_line_exit_2(
    overfit: dict[str, Path], tmp_path: Path, make: str, needles: list[str]
) -> None:
    records = [json.loads(x) for x in overfit["nonmembers"].read_text().splitlines()]
    members = overfit["members"]
    if make == "tiny":
        nonmembers = write_jsonl(tmp_path / "n.jsonl", records[:5])
    elif make == "one_class":
        nonmembers = write_jsonl(tmp_path / "n.jsonl", [dict(r, target=1) for r in records])
        members = write_jsonl(
            tmp_path / "m.jsonl",
            [dict(json.loads(x), target=1) for x in overfit["members"].read_text().splitlines()],
        )
    else:
        nonmembers = tmp_path / "absent.jsonl"
    out = tmp_path / "report.json"
    code, _, err = run(
        "membership",
        str(overfit["model"]),
        "--members",
        str(members),
        "--nonmembers",
        str(nonmembers),
        "-o",
        str(out),
    )
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--references", "3"], "even number"),
        (["--shadows", "2"], "--population"),
        (["--features", "logits+gradient"], "unknown feature"),
        (["--attack-models", "xgboost"], "xgboost"),
        (["--folds", "1"], "--folds"),
        (["--bootstrap", "0"], "--bootstrap"),
    ],
)
def test_bad_membership_flags(overfit: dict[str, Path], flags: list[str], needle: str) -> None:
    code, _, err = run(
        "membership",
        str(overfit["model"]),
        "--members",
        str(overfit["members"]),
        "--nonmembers",
        str(overfit["nonmembers"]),
        *flags,
    )
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_cache_makes_a_rerun_skip_inference(
    overfit: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = MembershipConfig(
        model=str(overfit["model"]),
        members=str(overfit["members"]),
        nonmembers=str(overfit["nonmembers"]),
        features="loss",
        classifiers=("logreg",),
        boundary_samples=0,
        n_boot=10,
        device="cpu",
        cache_dir=str(tmp_path / "cache"),
    )
    first = run_membership(config)
    assert len(list((tmp_path / "cache").glob("features-*.npz"))) == 2
    from codeaudit.membership import check

    def no_inference(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("inference ran despite the cache")

    monkeypatch.setattr(check, "extract_features", no_inference)
    second = run_membership(config)
    assert second.best.auc == first.best.auc


def test_train_api_returns_models_for_attacks(overfit: dict[str, Path]) -> None:
    assert api.predict  # the API surface the audit builds on stays importable
