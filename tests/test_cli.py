"""The command line, end to end through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.cli import cli
from tests.conftest import planted_records, write_jsonl

TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "64", "--min-freq", "1"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("codeaudit: error: ")
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_help_lists_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("train", "predict"):
        assert command in out
    code, out, _ = run("--version")
    assert code == 0 and "codeaudit" in out


def test_help_does_not_import_torch() -> None:
    probe = (
        "import sys; from codeaudit.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False False")


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    train = write_jsonl(root / "train.jsonl", planted_records(80, seed=1))
    test = write_jsonl(root / "test.jsonl", planted_records(20, seed=2))
    model = root / "model.pt"
    code, out, err = run(
        "train",
        str(train),
        "-o",
        str(model),
        "--epochs",
        "15",
        "--lr",
        "0.01",
        "--val-split",
        "0.2",
        "--report",
        str(root / "train.json"),
        *TINY,
    )
    assert code == 0, err
    assert "validation" in out and "accuracy" in out
    return {"root": root, "train": train, "test": test, "model": model}


def test_train_writes_model_and_json_report(cli_model: dict[str, Path]) -> None:
    report = json.loads((cli_model["root"] / "train.json").read_text())
    assert report["tool"] == "codeaudit" and report["command"] == "train"
    assert report["model"]["path"] == str(cli_model["model"])
    assert len(report["model"]["sha256"]) == 64 and len(report["data"]["sha256"]) == 64
    assert report["seed"] == 0
    assert report["val_source"] == "split" and report["n_train"] + report["n_val"] == 80
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "loss"):
        assert key in report["val_metrics"]
    assert len(report["history"]) == 15
    # a 20% split of 80 functions: the validation numbers come with a warning that says so
    few = "validation: measured on only 16 functions"
    assert any(w.startswith(few) for w in report["warnings"])


def test_predict_json_and_report_file(cli_model: dict[str, Path], tmp_path: Path) -> None:
    out_file = tmp_path / "pred.json"
    code, out, err = run(
        "predict",
        str(cli_model["model"]),
        str(cli_model["test"]),
        "--format",
        "json",
        "-o",
        str(out_file),
    )
    assert code == 0, err
    printed = json.loads(out)
    written = json.loads(out_file.read_text())
    assert printed["predictions"] == written["predictions"]
    assert len(printed["predictions"]) == 20
    first = printed["predictions"][0]
    assert set(first) == {"id", "label", "predicted_label", "p_vulnerable"}
    assert first["id"] == "s0" and 0.0 <= first["p_vulnerable"] <= 1.0
    metrics = printed["metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert key in metrics
    assert metrics["accuracy"] >= 0.8
    assert printed["model"]["sha256"] and printed["data"]["sha256"]


def test_predict_warns_when_the_numbers_do_not_mean_what_they_seem(
    cli_model: dict[str, Path], tmp_path: Path
) -> None:
    """Labels the wrong way round: ranking below chance is said, and 20 functions are few."""
    flipped = [{**r, "target": 1 - r["target"]} for r in planted_records(20, seed=2)]
    data = write_jsonl(tmp_path / "flipped.jsonl", flipped)
    code, out, err = run("predict", str(cli_model["model"]), str(data), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["metrics"]["roc_auc"] < 0.5
    warnings = " ".join(report["warnings"])
    assert f"{data}: ROC AUC" in warnings and "at or below chance" in warnings
    assert "measured on only 20 functions" in warnings


def test_predict_unlabelled_data_has_no_metrics(cli_model: dict[str, Path], tmp_path: Path) -> None:
    records = [{"id": f"u{i}", "code": r["func"]} for i, r in enumerate(planted_records(5))]
    data = write_jsonl(tmp_path / "unlabelled.jsonl", records)
    code, out, err = run("predict", str(cli_model["model"]), str(data), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["metrics"] is None
    assert [p["label"] for p in report["predictions"]] == [None] * 5


def test_never_overwrites_without_force(cli_model: dict[str, Path], tmp_path: Path) -> None:
    existing = tmp_path / "existing.pt"
    existing.write_bytes(b"keep me")
    code, _, err = run("train", str(cli_model["train"]), "-o", str(existing), *TINY)
    assert_one_line_error(code, err, str(existing), "--force")
    assert existing.read_bytes() == b"keep me"
    report = tmp_path / "r.json"
    report.write_text("old")
    code, _, err = run(
        "predict", str(cli_model["model"]), str(cli_model["test"]), "-o", str(report)
    )
    assert_one_line_error(code, err, "exists")
    assert report.read_text() == "old"
    code, _, err = run(
        "predict", str(cli_model["model"]), str(cli_model["test"]), "-o", str(report), "--force"
    )
    assert code == 0 and json.loads(report.read_text())["command"] == "predict"


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ('{"func": "int f();", "target": 1}\n{"func": broken\n', ["bad.jsonl:2", "invalid JSON"]),
        ('{"func": "int f();", "target": 2}\n', ["bad.jsonl:1", "label 2"]),
        ('{"code_x": "int f();", "target": 1}\n', ["bad.jsonl:1", "no code field"]),
        ("", ["bad.jsonl", "empty"]),
    ],
)
def test_bad_data_is_one_line_exit_2_and_no_output(
    tmp_path: Path, content: str, needles: list[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    out = tmp_path / "m.pt"
    code, _, err = run("train", str(data), "-o", str(out), *TINY)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_non_utf8_and_missing_files(cli_model: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"func": "int f();", "target": 1}\n{"func": "caf\xe9", "target": 0}\n')
    code, _, err = run("predict", str(cli_model["model"]), str(data))
    assert_one_line_error(code, err, "latin1.jsonl:2", "UTF-8")
    code, _, err = run("predict", str(cli_model["model"]), str(tmp_path / "nope.jsonl"))
    assert_one_line_error(code, err, "nope.jsonl", "not found")
    code, _, err = run("predict", str(tmp_path / "nope.pt"), str(cli_model["test"]))
    assert_one_line_error(code, err, "nope.pt", "not found")


def test_skip_invalid_counts_what_it_skipped(cli_model: dict[str, Path], tmp_path: Path) -> None:
    good = planted_records(4)
    lines = [
        json.dumps(good[0]),
        "{oops",
        json.dumps(good[1]),
        json.dumps({**good[2], "target": 7}),
    ]
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(lines) + "\n")
    code, out, err = run(
        "predict", str(cli_model["model"]), str(data), "--skip-invalid", "--format", "json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["skipped"] == 2 and report["n"] == 2
    assert any("skipped 2 invalid record" in w for w in report["warnings"])


def test_pickle_checkpoint_refused_through_the_cli(
    cli_model: dict[str, Path], tmp_path: Path
) -> None:
    import torch

    from codeaudit.models import load_model
    from codeaudit.models.checkpoint import checkpoint_payload
    from tests.models.test_checkpoint import _Payload

    marker = tmp_path / "ran"
    payload = checkpoint_payload(load_model(cli_model["model"]).model)
    payload["metadata"]["x"] = _Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    code, _, err = run("predict", str(evil), str(cli_model["test"]))
    assert_one_line_error(code, err, "evil.pt", "refused", "--trust-checkpoint")
    assert not marker.exists()
    code, out, err = run("predict", str(evil), str(cli_model["test"]), "--trust-checkpoint")
    assert code == 1 and marker.exists()  # it ran, and the checkpoint rule reports it
    assert "loaded through full unpickling" in " ".join(out.split())
    assert "CA-C001" in out
    code, _, _ = run(
        "predict", str(evil), str(cli_model["test"]), "--trust-checkpoint", "--fail-on", "critical"
    )
    assert code == 0


def test_usage_errors_are_one_line(cli_model: dict[str, Path]) -> None:
    code, _, err = run("train", str(cli_model["train"]))
    assert_one_line_error(code, err, "-o")
    code, _, err = run("train", str(cli_model["train"]), "-o", "x.pt", "--arch", "cnn")
    assert_one_line_error(code, err, "--arch")
    code, _, err = run(
        "predict", str(cli_model["model"]), str(cli_model["test"]), "--lang", "cobol"
    )
    assert_one_line_error(code, err, "cobol")
    code, _, err = run(
        "predict", str(cli_model["model"]), str(cli_model["test"]), "--report", "out.xlsx"
    )
    assert_one_line_error(code, err, "out.xlsx", "extension")
    code, _, err = run(
        "predict", str(cli_model["model"]), str(cli_model["test"]), "--device", "cuda"
    )
    import torch

    if not torch.cuda.is_available():
        assert_one_line_error(code, err, "CUDA is not available")


def test_same_seed_same_report_apart_from_timestamp(
    cli_model: dict[str, Path], tmp_path: Path
) -> None:
    reports = []
    for name in ("a", "b"):
        model = tmp_path / f"{name}.pt"
        report = tmp_path / f"{name}.json"
        code, _, err = run(
            "train",
            str(cli_model["train"]),
            "-o",
            str(model),
            "--epochs",
            "2",
            "--report",
            str(report),
            *TINY,
        )
        assert code == 0, err
        data = json.loads(report.read_text())
        # threads: chosen from the load at the time (codeaudit.threads)
        for volatile in ("created", "seconds", "model", "threads"):
            data.pop(volatile)
        for epoch in data["history"]:
            epoch.pop("seconds")
        reports.append(data)
    assert reports[0] == reports[1]
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_internal_errors_are_one_line_with_exit_3(
    monkeypatch: pytest.MonkeyPatch, cli_model
) -> None:
    from codeaudit import api

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("unexpected state")

    monkeypatch.setattr(api, "predict", boom)
    result = CliRunner().invoke(cli, ["predict", str(cli_model["model"]), str(cli_model["test"])])
    assert result.exit_code == 3
    assert "internal error" in result.stderr and "Traceback" not in result.stderr


def test_interrupt_exits_130_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, cli_model: dict[str, Path], tmp_path: Path
) -> None:
    from codeaudit.train import trainer

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.torch.optim.AdamW, "step", interrupted)
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(cli_model["train"]),
            "-o",
            str(out),
            "--report",
            str(tmp_path / "r.json"),
            *TINY,
        ],
    )
    assert result.exit_code == 130
    assert "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("columns", [80, 132])
def test_terminal_report_fits_the_width_it_is_given(
    cli_model: dict[str, Path], columns: int
) -> None:
    result = CliRunner().invoke(
        cli,
        ["predict", str(cli_model["model"]), str(cli_model["test"])],
        env={"COLUMNS": str(columns)},
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    if columns > 100:  # a wide terminal is used, not a fixed 100
        assert max(len(line) for line in lines) > 100


def test_output_width_prefers_columns_then_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from codeaudit.cli.emit import output_width

    monkeypatch.setenv("COLUMNS", "91")
    assert output_width() == 91
    monkeypatch.setenv("COLUMNS", "wide")  # not a width: ignored
    monkeypatch.setattr("sys.stdout", None)
    monkeypatch.setattr("sys.stderr", None)
    monkeypatch.setattr("sys.stdin", None)
    assert output_width(default=77) == 77  # no terminal anywhere: a file or a CI log
