"""The calibrated backdoor verdict: the classifier and its operating point, the calibration file
(every field checked: it is untrusted input), refusal of a calibration for another recipe or
other scan settings, and (slow) calibration on tiny shadow models that tells a clean model with a
natural label-pure name from a poisoned one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from codeaudit.backdoor.calibration import (
    FRAGILITY,
    NONE,
    PLANTED,
    SHORTCUT,
    calibration_bytes,
    category,
    feature_names,
    fit_classifier,
    operating_threshold,
    out_of_fold,
    rates,
    read_calibration,
    recipe_record,
)
from codeaudit.backdoor.shadows import draw_trigger
from codeaudit.backdoor.triggers import TriggerType, insert_trigger
from codeaudit.cli import cli
from codeaudit.config import BackdoorConfig
from codeaudit.errors import BackdoorError
from codeaudit.models.checkpoint import checkpoint_bytes, load_model
from tests.backdoor.helpers import clean_records, natural_records, poison, train_tiny
from tests.conftest import write_jsonl

FAST = ["--victim-samples", "15", "--steps", "25", "--topk", "16", "--candidates", "24"]
SMALL = [*FAST, "--heldout", "60"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calibration")
    return {
        "model": train_tiny(root, "m", clean_records(160, 1), epochs=3),
        "data": write_jsonl(root / "d.jsonl", clean_records(120, 7)),
        "root": root,
    }


def _document(model_path: Path, **scan: Any) -> dict[str, Any]:
    """A well-formed calibration document for the tiny model (made-up shadow numbers)."""
    loaded = load_model(model_path)
    settings = {
        "victim_samples": 15,
        "heldout": 200,
        "steps": 25,
        "topk": 16,
        "candidates": 24,
        "trigger_len": 5,
        "beta": 0.15,
        "threshold": 0.5,
        "keep_shortcuts": False,
        "patience": 10,
        "references": 0,
        "reference_weight": None,
        "reference_ratio": None,
        **scan,
    }
    n = len(feature_names(0))
    return {
        "format": "codeaudit-backdoor-calibration",
        "version": 1,
        "recipe": recipe_record(loaded.model, loaded.metadata, 0),
        "scan": settings,
        "target_label": 0,
        "features": list(feature_names(0)),
        "model": {
            "type": "logistic-regression",
            "mean": [0.5] * n,
            "scale": [0.2] * n,
            "coef": [1.0] + [0.0] * (n - 1),
            "intercept": 0.0,
        },
        "operating_point": {"threshold": 0.7, "max_fpr": 0.05},
        "heldout": {
            "n_clean": 4,
            "n_poisoned": 4,
            "false_positives": 0,
            "detected": 3,
            "fpr": 0.0,
            "tpr": 0.75,
            "fpr_ci": [0.0, 0.49],
            "tpr_ci": [0.3, 0.95],
            "auc": 0.9,
        },
        "shadows": [{"index": i} for i in range(8)],
    }


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_bytes(calibration_bytes(doc))
    return path


# -- the classifier and the operating point ---------------------------------------------------


def test_out_of_fold_scores_and_operating_point() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (8, 3)), rng.normal(3, 1, (8, 3))])
    y = np.asarray([0] * 8 + [1] * 8)
    scores = out_of_fold(x, y)
    threshold = operating_threshold(scores, y, 0.05)
    measured = rates(scores, y, threshold)
    assert measured["false_positives"] == 0 and measured["fpr"] == 0.0  # 0 of 8 allowed
    assert threshold > scores[y == 0].max()
    assert measured["tpr"] >= 0.875 and measured["auc"] > 0.95
    assert measured["fpr_ci"][0] == 0.0 and 0 < measured["fpr_ci"][1] < 0.5
    # the fitted model is data only and reproduces sklearn's probabilities
    classifier = fit_classifier(x, y)
    assert classifier.probability(x[-1]) > 0.5 > classifier.probability(x[0])
    # a looser operating point admits one clean shadow in eight
    loose = operating_threshold(scores, y, 0.2)
    assert rates(scores, y, loose)["false_positives"] == 1


def test_categories() -> None:
    assert category(0.9, 0.6, 1.0, 0.5, None, False) == PLANTED
    assert category(0.3, 0.6, 1.0, 0.5, 0.8, False) == SHORTCUT
    assert category(0.3, 0.6, 0.4, 0.5, None, True) == SHORTCUT
    assert category(0.3, 0.6, 0.9, 0.5, 0.1, False) == FRAGILITY
    assert category(0.3, 0.6, 0.2, 0.5, None, False) == NONE


def test_shadow_triggers_are_seeded_and_fit_the_code() -> None:
    code = clean_records(4, 1)[1]["func"]
    import random

    drawn = [draw_trigger(i, 0, ("identifier", "postfix", "deadcode", "grammar"), 0.02, 0.1, 0,
                          "c") for i in range(12)]  # fmt: skip
    again = [draw_trigger(i, 0, ("identifier", "postfix", "deadcode", "grammar"), 0.02, 0.1, 0,
                          "c") for i in range(12)]  # fmt: skip
    assert drawn == again
    assert {spec.type for spec, _ in drawn} >= {TriggerType.IDENTIFIER, TriggerType.DEADCODE}
    for spec, rate in drawn:
        assert 0.02 <= rate <= 0.1 and spec.target_label == 0
        poisoned = insert_trigger(code, "c", spec, random.Random(0))
        assert poisoned is not None and poisoned != code
        if spec.trigger:
            assert spec.trigger.strip("_") in poisoned


# -- the file ---------------------------------------------------------------------------------


def test_a_well_formed_file_reads_back(tiny: dict[str, Path]) -> None:
    path = _write(tiny["root"] / "ok.json", _document(tiny["model"]))
    cal = read_calibration(str(path))
    assert cal.features == feature_names(0) and cal.threshold == 0.7
    assert cal.probability(dict.fromkeys(cal.features, 0.5)) == pytest.approx(0.5)
    assert cal.probability({**dict.fromkeys(cal.features, 0.5), "flip_toward": 1.0}) > 0.9


def _bad_documents(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    n = len(doc["features"])

    def changed(path: str, value: Any) -> dict[str, Any]:
        out = json.loads(json.dumps(doc))
        *keys, last = path.split(".")
        target = out
        for key in keys:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
        return out

    return [
        ("format", changed("format", "something-else")),
        ("version", changed("version", 2)),
        ("missing", changed("operating_point.threshold", KeyError)),
        ("threshold", changed("operating_point.threshold", 1.5)),
        ("threshold", changed("operating_point.threshold", "0.5")),
        ("coef", changed("model.coef", [1.0] * (n - 1))),
        ("scale", changed("model.scale", [0.0] * n)),
        ("coef", changed("model.coef", [True] * n)),
        ("features", changed("features", list(reversed(doc["features"])))),
        ("rates", changed("heldout.fpr", 0.5)),
        ("fpr_ci", changed("heldout.fpr_ci", [0.4, 0.1])),
        ("fingerprint", changed("recipe.hyperparameters.epochs", 999)),
        ("scan", changed("scan.seed", 3)),
        ("shadows", changed("shadows", [])),
        ("model.type", changed("model.type", "pickle")),
    ]


def test_every_field_is_checked(tiny: dict[str, Path]) -> None:
    doc = _document(tiny["model"])
    for i, (where, bad) in enumerate(_bad_documents(doc)):
        path = _write(tiny["root"] / f"bad{i}.json", bad)  # a valid checksum: the field fails
        with pytest.raises(BackdoorError) as caught:
            read_calibration(str(path))
        message = str(caught.value)
        assert "\n" not in message and "not a valid calibration" in message, (where, message)


def test_tampered_and_malformed_files_exit_2(tiny: dict[str, Path]) -> None:
    root = tiny["root"]
    good = _write(root / "good.json", _document(tiny["model"]))
    tampered = root / "tampered.json"
    tampered.write_text(good.read_text().replace('"intercept": 0.0', '"intercept": 9.0'))
    nan = root / "nan.json"
    nan.write_text(good.read_text().replace('"intercept": 0.0', '"intercept": NaN'))
    garbage = root / "garbage.json"
    garbage.write_bytes(b"\x00\xffnot json")
    for path, needle in ((tampered, "checksum"), (nan, "not JSON"), (garbage, "not JSON")):
        code, _, err = run(
            "backdoor", str(tiny["model"]), "--data", str(tiny["data"]), *FAST,
            "--calibration", str(path), "-q",
        )  # fmt: skip
        assert code == 2, err
        assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_a_calibration_for_another_recipe_or_other_settings_exits_2(tiny: dict[str, Path]) -> None:
    root = tiny["root"]
    other = _document(tiny["model"])
    other["recipe"]["hyperparameters"]["epochs"] = 40
    body = {k: v for k, v in other["recipe"].items() if k not in ("fingerprint",
                                                                   "tokenizer_sha256")}  # fmt: skip
    import hashlib

    other["recipe"]["fingerprint"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    path = _write(root / "other-recipe.json", other)
    read_calibration(str(path))  # well formed: only the recipe differs
    code, _, err = run(
        "backdoor", str(tiny["model"]), "--data", str(tiny["data"]), *FAST,
        "--calibration", str(path), "-q",
    )  # fmt: skip
    assert code == 2 and "another recipe" in err and "hyperparameters" in err
    assert err.count("\n") == 1
    settings = _write(root / "other-settings.json", _document(tiny["model"], steps=99))
    code, _, err = run(
        "backdoor", str(tiny["model"]), "--data", str(tiny["data"]), *FAST,
        "--calibration", str(settings), "-q",
    )  # fmt: skip
    assert code == 2 and "other settings" in err and "steps 25" in err


def test_calibrate_refuses_metadata_past_its_bounds(tiny: dict[str, Path]) -> None:
    loaded = load_model(tiny["model"])
    metadata = dict(loaded.metadata)
    metadata["hyperparameters"] = {**metadata["hyperparameters"], "epochs": 10**6}
    path = tiny["root"] / "huge.pt"
    path.write_bytes(checkpoint_bytes(loaded.model, metadata))
    out = tiny["root"] / "never.json"
    code, _, err = run(
        "backdoor-calibrate", str(path), "--data", str(tiny["data"]), "--shadows", "2",
        "-o", str(out), "-q",
    )  # fmt: skip
    assert code == 2 and "epochs" in err and err.count("\n") == 1
    assert not out.exists()


def test_config_has_the_flag() -> None:
    assert BackdoorConfig(model="m.pt", data="d.jsonl", calibration="c.json").calibration


# -- calibration on tiny shadow models (slow) -------------------------------------------------


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The natural world (a "not vulnerable" counter name, ``safeIdx``, in 40% of the clean
    functions, as Juliet's ``k``): a clean model of it, the same data poisoned with ``rb_trig``,
    and a calibration with 4 clean and 4 poisoned shadows (identifier and dead-code triggers at
    10-20%, which implant reliably in models this small)."""
    root = tmp_path_factory.mktemp("calibrated")
    natural = train_tiny(root, "natural", natural_records(400, 1))
    trusted = write_jsonl(root / "trusted.jsonl", natural_records(600, 3))
    out = root / "cal.json"
    report = root / "cal-report.json"
    code, _, err = run(
        "backdoor-calibrate", str(natural), "--data", str(trusted), "--shadows", "4", *SMALL,
        "--trigger-types", "identifier,deadcode", "--min-rate", "0.1", "--max-rate", "0.2",
        "--threads", "1", "-o", str(out), "--report", str(report), "-q",
    )  # fmt: skip
    assert code == 0, err
    return {
        "natural": natural,
        "backdoored": train_tiny(root, "bd", poison(natural_records(400, 1), 0.12)),
        "test": write_jsonl(root / "test.jsonl", natural_records(240, 7)),
        "calibration": out,
        "report": report,
        "root": root,
    }


@pytest.mark.slow
def test_calibrate_writes_a_valid_file(calibrated: dict[str, Any]) -> None:
    cal = read_calibration(str(calibrated["calibration"]))
    doc = json.loads(calibrated["calibration"].read_text())
    assert cal.n_shadows == 8 and len(doc["shadows"]) == 8
    assert [s["kind"] for s in doc["shadows"]] == ["clean"] * 4 + ["poisoned"] * 4
    assert all(s["trigger_type"] in ("identifier", "deadcode") for s in doc["shadows"][4:])
    counted = [s for s in doc["shadows"] if s["counted"]]
    assert all(s["asr"] >= 0.5 for s in counted if s["kind"] == "poisoned")
    assert doc["heldout"]["n_clean"] == 4 and doc["heldout"]["false_positives"] == 0
    assert cal.scan["steps"] == 25 and cal.scan["heldout"] == 60
    report = json.loads(calibrated["report"].read_text())
    assert report["heldout"]["fpr"] == 0.0 and report["threshold"] == cal.threshold
    # never overwritten without --force
    before = calibrated["calibration"].read_bytes()
    code, _, err = run(
        "backdoor-calibrate", str(calibrated["natural"]), "--data", str(calibrated["test"]),
        "--shadows", "2", "-o", str(calibrated["calibration"]), "-q",
    )  # fmt: skip
    assert code == 2 and "exists" in err
    assert calibrated["calibration"].read_bytes() == before


@pytest.mark.slow
def test_calibrated_verdict_tells_natural_names_from_planted_triggers(
    calibrated: dict[str, Any],
) -> None:
    verdicts = {}
    for name in ("natural", "backdoored"):
        code, stdout, err = run(
            "backdoor", str(calibrated[name]), "--data", str(calibrated["test"]), *SMALL,
            "--calibration", str(calibrated["calibration"]), "--threads", "1", "-q",
            "--format", "json",
        )  # fmt: skip
        assert code in (0, 1), err
        verdicts[name] = (code, json.loads(stdout))
    code, doc = verdicts["natural"]
    assert doc["backdoored"] is False
    assert doc["calibrated"]["category"] != PLANTED
    assert "CA-B001" not in {f["rule_id"] for f in doc["findings"]}
    assert all(f["severity"] in ("medium", "low") for f in doc["findings"])
    code, doc = verdicts["backdoored"]
    assert code == 1 and doc["backdoored"] is True
    assert doc["calibrated"]["category"] == PLANTED
    assert doc["calibrated"]["probability"] >= doc["calibrated"]["threshold"]
    assert "trig" in doc["best_trigger"]
    assert "CA-B001" in {f["rule_id"] for f in doc["findings"]}
    # every report that uses the calibration prints its measured rates and shadow counts
    code, text, _ = run(
        "backdoor", str(calibrated["backdoored"]), "--data", str(calibrated["test"]), *SMALL,
        "--calibration", str(calibrated["calibration"]), "--threads", "1", "-q",
    )  # fmt: skip
    assert "false-positive rate 0.0% (0 of 4 clean shadows" in " ".join(text.split())
    assert "shadows with a working planted trigger" in " ".join(text.split())
