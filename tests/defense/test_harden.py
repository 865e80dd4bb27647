"""``codeaudit harden`` end to end on a tiny memorising model: calibration and verification on
disjoint halves, the written files, auditing what is shipped, and bad input (exit 2)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.cli import cli
from codeaudit.data.synthetic import generate
from codeaudit.io import sha256_file
from tests.conftest import write_jsonl

TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "64"]
FAST = [
    "--rewrites", "2", "--boundary-samples", "20", "--queries", "3",
    "--bootstrap", "20", "--folds", "2", "-q",
]  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("harden")
    records = generate(120, seed=21)
    rng = random.Random(5)
    for record in records:  # random labels: members are memorised, non-members are guesses
        record["target"] = rng.randint(0, 1)
    members = write_jsonl(root / "members.jsonl", records[:60])
    nonmembers = write_jsonl(root / "nonmembers.jsonl", records[60:])
    model = root / "model.pt"
    code, _, err = run(
        "train", str(members), "-o", str(model), "--val-split", "0", "--epochs", "20",
        "--lr", "0.01", "-q", *TINY,
    )  # fmt: skip
    assert code == 0, err
    before = (sha256_file(model), model.stat().st_mtime_ns)
    out = root / "hardened.pt"
    code, stdout, err = run(
        "harden", str(model), "-o", str(out), "--members", str(members),
        "--nonmembers", str(nonmembers), "--export", "torchscript", "--format", "json",
        "--report", str(root / "harden.txt"), "--plot", str(root / "curve.png"), *FAST,
    )  # fmt: skip
    assert code in (0, 1), err
    (root / "harden.json").write_text(stdout)
    assert (sha256_file(model), model.stat().st_mtime_ns) == before  # input untouched
    return {"root": root, "members": members, "nonmembers": nonmembers, "model": model,
            "hardened": out}  # fmt: skip


def test_harden_report(setup: dict[str, Path]) -> None:
    report = json.loads((setup["root"] / "harden.json").read_text())
    assert report["command"] == "harden"
    assert report["model"]["sha256"] == sha256_file(setup["model"])
    assert report["output"]["sha256"] == sha256_file(setup["hardened"])
    assert Path(report["export-torchscript"]["path"]).is_file()
    # the plot is hashed like every file the command writes (and its path kept where it was)
    assert report["plot"] == str(setup["root"] / "curve.png")
    assert report["curve-plot"]["sha256"] == sha256_file(setup["root"] / "curve.png")
    d = report["defense"]
    assert d["sigma_source"] == "calibrated" and d["expose"] == "top1" and d["keyed"]
    assert d["parent_sha256"] == report["model"]["sha256"]
    c, v = report["calibration"], report["verification"]
    # calibration and verification are disjoint halves of the 60 + 60 functions
    assert c["n_members"] + v["n_members"] == 60 and c["n_nonmembers"] + v["n_nonmembers"] == 60
    assert c["sigma"] == d["sigma"] and c["effective_target"] >= 0.6
    assert v["labels_changed"] == 0 and v["averaging_gain"] == 0.0
    assert v["repeat_averaging_auc"] == v["single_query_auc"]
    for u in v["utility"]:
        assert u["accuracy_before"] == u["accuracy_after"] and u["f1_before"] == u["f1_after"]
    rows = {(r["group"], r["name"]): r for r in v["rows"]}
    assert rows[("feature set", "embedding")]["note"] == "not exposed"
    assert rows[("feature set", "embedding")]["after_auc"] is None
    assert rows[("threshold", "threshold-unknown-tokens")]["after_auc"] is None
    assert rows[("feature set", "loss")]["after_auc"] is not None
    correctness = rows[("label-only", "label-only-correctness")]
    assert correctness["before_auc"] == correctness["after_auc"]  # labels untouched
    assert abs(correctness["after_auc"] - v["label_only_floor"]) < 1e-9
    assert v["best_auc_before"] > 0.7  # the memorising model leaks before hardening
    fired = {f["rule_id"] for f in report["findings"]}
    assert ("CA-H001" in fired) == (not v["target_met"])
    assert "CA-H005" not in fired
    assert (setup["root"] / "harden.txt").read_text().startswith("Hardening (NMID)")
    assert report["exports"][0]["max_abs_diff"] == 0.0
    # the key lives in the hardened checkpoint only, never in a report
    import torch

    key = torch.load(setup["hardened"], weights_only=True)["defense"]["key"]
    assert len(key) == 32 and key not in (setup["root"] / "harden.json").read_text()
    assert key not in (setup["root"] / "harden.txt").read_text()


def test_membership_audits_what_is_shipped(setup: dict[str, Path]) -> None:
    code, stdout, err = run(
        "membership", str(setup["hardened"]), "--members", str(setup["members"]),
        "--nonmembers", str(setup["nonmembers"]), "--format", "json", "-q", "--bootstrap", "20",
    )  # fmt: skip
    assert code in (0, 1), err
    report = json.loads(stdout)
    assert report["settings"]["exposed"] == ["confidence", "label", "logits", "loss"]
    names = {a["attack"] for a in report["attacks"]}
    assert "threshold-unknown-tokens" not in names and "label-only-correctness" in names
    assert not any("embedding" in a["features"] for a in report["attacks"])
    assert report["tokenizer_channel_auc"] is None
    assert any("is hardened" in w for w in report["warnings"])


def test_predict_with_the_hardened_model(setup: dict[str, Path]) -> None:
    _, plain, _ = run("predict", str(setup["model"]), str(setup["nonmembers"]), "--format", "json")
    _, hard, _ = run(
        "predict", str(setup["hardened"]), str(setup["nonmembers"]), "--format", "json"
    )
    plain_p, hard_p = json.loads(plain)["predictions"], json.loads(hard)["predictions"]
    assert [p["predicted_label"] for p in plain_p] == [p["predicted_label"] for p in hard_p]
    assert [p["p_vulnerable"] for p in plain_p] != [p["p_vulnerable"] for p in hard_p]


def test_label_exposure(setup: dict[str, Path]) -> None:
    out = setup["root"] / "label.pt"
    code, stdout, err = run(
        "harden", str(setup["model"]), "-o", str(out), "--expose", "label",
        "--members", str(setup["members"]), "--nonmembers", str(setup["nonmembers"]),
        "--format", "json", *FAST,
    )  # fmt: skip
    assert code in (0, 1), err
    v = json.loads(stdout)["verification"]
    assert v["best_score_auc_after"] is None and v["target_met"]
    code, stdout, _ = run(
        "membership", str(out), "--members", str(setup["members"]),
        "--nonmembers", str(setup["nonmembers"]), "--format", "json", "-q", "--bootstrap", "20",
    )  # fmt: skip
    families = {a["family"] for a in json.loads(stdout)["attacks"]}
    assert families == {"label-only"}


def test_fixed_sigma_without_data_is_unverified(setup: dict[str, Path]) -> None:
    out = setup["root"] / "fixed.pt"
    code, stdout, _ = run("harden", str(setup["model"]), "-o", str(out), "--sigma", "3",
                          "--format", "json", "-q")  # fmt: skip
    report = json.loads(stdout)
    assert code == 1 and report["status"] == "unverified"
    assert report["defense"]["sigma"] == 3.0 and report["defense"]["sigma_source"] == "given"
    assert [f["rule_id"] for f in report["findings"]] == ["CA-H007"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sigma", "-1"], "must be a finite number >= 0"),
        (["--sigma", "lots"], "neither 'auto' nor a number"),
        (["--sigma", "nan"], "must be a finite number >= 0"),
        (["--expose", "logits"], "'logits' is not one of"),
        ([], "--sigma auto calibrates on --members"),
        (["--sigma", "1", "--members", "MEMBERS"], "go together"),
        (["--sigma", "1", "--export", "onnx"], "'onnx' is not"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    setup: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "h.pt"
    args = [str(setup["members"]) if a == "MEMBERS" else a for a in args]
    code, _, err = run("harden", str(setup["model"]), "-o", str(out), *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_refusals(setup: dict[str, Path], tmp_path: Path) -> None:
    # an already hardened checkpoint
    code, _, err = run("harden", str(setup["hardened"]), "-o", str(tmp_path / "x.pt"),
                       "--sigma", "1")  # fmt: skip
    assert code == 2 and "already hardened" in err and not (tmp_path / "x.pt").exists()
    # an existing output without --force is left alone
    existing = tmp_path / "exists.pt"
    existing.write_bytes(b"keep me")
    code, _, err = run("harden", str(setup["model"]), "-o", str(existing), "--sigma", "1")
    assert code == 2 and "exists" in err and existing.read_bytes() == b"keep me"
    # the input named as the output, even with --force
    before = sha256_file(setup["model"])
    code, _, err = run("harden", str(setup["model"]), "-o", str(setup["model"]), "--sigma", "1",
                       "--force")  # fmt: skip
    assert code == 2 and "replace the input model" in err
    assert sha256_file(setup["model"]) == before
    # a missing model
    code, _, err = run("harden", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "y.pt"),
                       "--sigma", "1")  # fmt: skip
    assert code == 2 and "not found" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.pt"]


def test_key_file_gives_the_same_noise(setup: dict[str, Path], tmp_path: Path) -> None:
    import torch

    key = tmp_path / "nmid.key"
    key.write_text("00112233445566778899AABBCCDDEEFF\n")
    outs = []
    for name in ("a.pt", "b.pt"):
        out = tmp_path / name
        code, _, err = run("harden", str(setup["model"]), "-o", str(out), "--sigma", "2",
                           "--key-file", str(key), "-q")  # fmt: skip
        assert code in (0, 1), err
        outs.append(torch.load(out, weights_only=True)["defense"])
    assert outs[0]["key"] == outs[1]["key"] == "00112233445566778899aabbccddeeff"
    # a fresh key otherwise
    code, _, _ = run("harden", str(setup["model"]), "-o", str(tmp_path / "c.pt"), "--sigma", "2",
                     "-q")  # fmt: skip
    assert torch.load(tmp_path / "c.pt", weights_only=True)["defense"]["key"] != outs[0]["key"]


@pytest.mark.parametrize("text", ["", "0011", "zz112233445566778899aabbccddeeff", "\xff" * 32])
def test_bad_key_file(setup: dict[str, Path], tmp_path: Path, text: str) -> None:
    key = tmp_path / "k"
    key.write_bytes(text.encode("latin-1"))
    out = tmp_path / "h.pt"
    code, _, err = run("harden", str(setup["model"]), "-o", str(out), "--sigma", "1",
                       "--key-file", str(key))  # fmt: skip
    assert code == 2 and "k: the key file must hold 32 hex digits" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_the_report_carries_the_frontier(setup: dict[str, Path]) -> None:
    report = json.loads((setup["root"] / "harden.json").read_text())
    f = report["frontier"]
    names = [p["name"] for p in f["points"]]
    assert names[0] == "undefended" and names[-1] == "label only"
    assert f["data"] == "the verification split (disjoint from calibration)"  # --plot swept
    assert f["chosen"] in names and f["verified_beats_label"] in (True, False)
    assert f["shipped"] == f"sigma {report['defense']['sigma']:.4g}"
    label = next(p for p in f["points"] if p["kind"] == "label")
    assert label["attack_auc"] == f["labels_only_auc"] and label["meets"]
    # when it recommends the label, the rule says so too (and the verdict, in one line)
    fired = {x["rule_id"] for x in report.get("findings", [])}
    assert ("CA-H008" in fired) == f["recommend_label"]
    assert f["reason"] in report["verdict"]
    text = (setup["root"] / "harden.txt").read_text()
    assert "Privacy-utility frontier" in text


def test_banded_noise_end_to_end(setup: dict[str, Path]) -> None:
    out = setup["root"] / "banded.pt"
    code, stdout, err = run(
        "harden", str(setup["model"]), "-o", str(out), "--noise", "banded",
        "--members", str(setup["members"]), "--nonmembers", str(setup["nonmembers"]),
        "--export", "torch.export", "--format", "json", *FAST,
    )  # fmt: skip
    assert code in (0, 1), err
    report = json.loads(stdout)
    d, c = report["defense"], report["calibration"]
    assert d["noise"] == "banded" and d["sigma"] == 0.0 and d["sigma_source"] == "calibrated"
    assert d["bands"] == c["bands"] == len(c["edges"]) + 1
    assert c["points"][0]["bands"] > 1  # the finest bands are tried first
    assert report["frontier"]["noise"] == "banded" and report["frontier"]["shipped"].endswith(
        "bands"
    )
    assert report["verification"]["labels_changed"] == 0
    assert report["verification"]["averaging_gain"] == 0.0  # keyed: repeats are identical
    assert Path(report["export-torch.export"]["path"]).is_file()
    from codeaudit.defense import load_hardened

    model = load_hardened(str(out))
    assert model.bands == d["bands"] and model.defense.mechanism == "banded"
    code, _, err = run(
        "harden", str(setup["model"]), "-o", str(setup["root"] / "b2.pt"), "--noise", "banded",
        "--sigma", "2", "--members", str(setup["members"]), "--nonmembers",
        str(setup["nonmembers"]),
    )  # fmt: skip
    assert code == 2 and "--sigma" in err and "--bands" in err


def test_label_only_attacks_run_once(
    setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hardened model keeps every label, so verification reuses the original model's
    label-only results (the boundary attack's rewrites are costly) instead of rerunning them."""
    from codeaudit.defense import verify as verify_module

    calls = []
    real = verify_module.label_only_suite

    def counting(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(type(model).__name__)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(verify_module, "label_only_suite", counting)
    code, stdout, err = run(
        "harden", str(setup["model"]), "-o", str(setup["root"] / "once.pt"), "--sigma", "2",
        "--members", str(setup["members"]), "--nonmembers", str(setup["nonmembers"]),
        "--format", "json", *FAST,
    )  # fmt: skip
    assert code in (0, 1), err
    assert len(calls) == 1 and calls[0] != "HardenedModel"
    rows = {(r["group"], r["name"]): r for r in json.loads(stdout)["verification"]["rows"]}
    boundary = rows[("label-only", "label-only-boundary")]
    assert boundary["before_auc"] == boundary["after_auc"]
