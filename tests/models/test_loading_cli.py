"""The models users ship, loaded the way they run codeaudit: the real command, in a fresh process.

A loader that passed in-process once crashed every fresh ``codeaudit`` process on transformers 5,
so these tests build each format with plain transformers and run ``codeaudit`` in a subprocess,
comparing its probabilities with what transformers itself computes. They carry the ``loading``
marker: ``.ci/run`` runs them again against the oldest transformers the metadata allows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models import foreign_models as fm

pytestmark = pytest.mark.loading

ROOT = Path(__file__).resolve().parents[2]


def codeaudit(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The installed console script when there is one (what users run), else ``-m codeaudit``."""
    script = Path(sys.executable).with_name("codeaudit")
    argv = [str(script)] if script.is_file() else [sys.executable, "-m", "codeaudit"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS"))}
    environment.update(env or {})
    return subprocess.run(
        [*argv, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )


def predictions(report: Path) -> np.ndarray:
    document = json.loads(report.read_text(encoding="utf-8"))
    return np.array([p["p_vulnerable"] for p in document["predictions"]])


def direct_probabilities(directory: Path, records: list[dict], max_len: int) -> np.ndarray:
    """transformers on the whitespace-collapsed source (codeaudit's ``raw`` input format)."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = fm.load_base_tokenizer(directory)
    model = AutoModelForSequenceClassification.from_pretrained(str(directory)).eval()
    out = []
    with torch.no_grad():
        for r in records:
            enc = tokenizer(fm.collapse(r["func"]), truncation=True, max_length=max_len)
            logits = model(input_ids=torch.tensor([enc["input_ids"]])).logits[0]
            p = torch.sigmoid(logits[0]) if len(logits) == 1 else torch.softmax(logits, -1)[1]
            out.append(float(p))
    return np.array(out)


@pytest.mark.parametrize("safetensors", [True, False], ids=["safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("num_labels", [1, 2], ids=["1-output", "2-output"])
@pytest.mark.parametrize("vocab_files_only", [False, True], ids=["tokenizer.json", "vocab+merges"])
def test_hugging_face_directory_predicts_in_a_fresh_process(
    tmp_path: Path, safetensors: bool, num_labels: int, vocab_files_only: bool
) -> None:
    directory = fm.make_hf_dir(
        tmp_path / "model",
        safetensors=safetensors,
        num_labels=num_labels,
        vocab_files_only=vocab_files_only,
    )
    records = fm.corpus(12)
    data = fm.write_data(tmp_path / "data.jsonl", records)
    report = tmp_path / "report.json"
    done = codeaudit("predict", str(directory), str(data), "-q", "-o", str(report), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bars, warnings or tracebacks from any library
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["checkpoint"]["source"] == "huggingface"
    assert document["checkpoint"]["input_format"] == "raw"
    assert document["checkpoint"]["outputs"] == num_labels
    ours = predictions(report)
    theirs = direct_probabilities(directory, records, max_len=128)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert np.ptp(theirs) > 1e-4  # the comparison can tell inputs apart


@pytest.fixture(scope="module")
def codexglue(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("codexglue")
    base = fm.make_base(root / "codebert-base")
    weights, records = fm.make_codexglue_bin(
        root / "saved_models" / "checkpoint-best-acc" / "model.bin", base
    )
    test = fm.corpus(24, seed=3)
    return {
        "root": root,
        "base": base,
        "weights": weights,
        "train": fm.write_data(root / "train.jsonl", records),
        "test": fm.write_data(root / "test.jsonl", test),
    }


def test_codexglue_model_bin_matches_the_codexglue_code(codexglue: dict[str, Path]) -> None:
    """Predictions through codeaudit equal those of a plain transformers script doing what the
    CodeXGLUE code does (run in its own process, no codeaudit import), to 1e-5; reading the same
    model on code tokens instead gives other numbers, so the input format matters."""
    root = codexglue["root"]
    reference = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("codexglue_reference.py")),
            str(codexglue["base"]),
            str(codexglue["weights"]),
            str(codexglue["test"]),
            str(fm.BLOCK_SIZE),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    theirs = np.array(json.loads(reference.stdout))
    common = ("--base", str(codexglue["base"]), "--max-len", str(fm.BLOCK_SIZE), "-q")
    raw = root / "raw.json"
    done = codeaudit(
        "predict",
        str(codexglue["weights"]),
        str(codexglue["test"]),
        *common,
        "-o",
        str(raw),
        cwd=root,
    )
    assert done.returncode in (0, 1), done.stderr
    ours = predictions(raw)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert np.ptp(theirs) > 1e-3
    document = json.loads(raw.read_text(encoding="utf-8"))
    assert document["checkpoint"] == {
        "source": "codexglue",
        "trusted_pickle": False,
        "input_format": "raw",
        "max_len": fm.BLOCK_SIZE,
        "outputs": 1,
        "privacy": None,  # no DP-SGD record (train --dp)
    }
    assert document["base"]["path"] == str(codexglue["base"])
    assert len(document["base"]["sha256"]) == 64
    tokens = root / "tokens.json"
    done = codeaudit(
        "predict",
        str(codexglue["weights"]),
        str(codexglue["test"]),
        *common,
        "--input-format",
        "tokens",
        "-o",
        str(tokens),
        cwd=root,
    )
    assert done.returncode in (0, 1), done.stderr
    assert np.abs(predictions(tokens) - theirs).max() > 1e-3


def test_elibadcode_model_bin_matches_its_wrapper(tmp_path: Path) -> None:
    from codeaudit.lang.lexer import lex
    from codeaudit.models.tokenizer import joined_text

    base = fm.make_base(tmp_path / "base")
    weights, wrapper = fm.make_elibadcode_bin(tmp_path / "model.bin", base)
    records = fm.corpus(10, seed=5)
    data = fm.write_data(tmp_path / "data.jsonl", records)
    report = tmp_path / "out.json"
    done = codeaudit(
        "predict",
        str(weights),
        str(data),
        "--base",
        str(base),
        "-q",
        "-o",
        str(report),
        cwd=tmp_path,
    )
    assert done.returncode in (0, 1), done.stderr
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["checkpoint"]["source"] == "elibadcode"
    assert document["checkpoint"]["input_format"] == "tokens"
    tokenizer = fm.load_base_tokenizer(base)
    theirs = []
    with torch.no_grad():
        for r in records:  # EliBadCode's input: code tokens joined by spaces, comments dropped
            text = joined_text(lex(r["func"], "c").tokens)[0]
            ids = tokenizer(text, truncation=True, max_length=128)["input_ids"]
            theirs.append(float(wrapper(torch.tensor([ids]))[0, 0]))
    np.testing.assert_allclose(predictions(report), theirs, atol=1e-5)


def _hub_cache(root: Path, repo: str, base: Path) -> Path:
    """A Hugging Face hub cache holding ``repo`` (the layout huggingface_hub writes)."""
    cache = root / "hub"
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    shutil.copytree(base, folder / "snapshots" / commit)
    return cache


def test_base_from_the_local_hugging_face_cache_and_not_from_the_network(
    codexglue: dict[str, Path], tmp_path: Path
) -> None:
    cache = _hub_cache(tmp_path, "microsoft/codebert-base", codexglue["base"])
    args = ("predict", str(codexglue["weights"]), str(codexglue["test"]), "-q", "--format", "json")
    found = codeaudit(
        *args, "--base", "microsoft/codebert-base", cwd=tmp_path, env={"HF_HUB_CACHE": str(cache)}
    )
    assert found.returncode in (0, 1), found.stderr
    assert json.loads(found.stdout)["checkpoint"]["source"] == "codexglue"
    missing = codeaudit(
        *args, "--base", "microsoft/unixcoder-base", cwd=tmp_path, env={"HF_HUB_CACHE": str(cache)}
    )
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert "no Hugging Face model 'microsoft/unixcoder-base' in the local cache" in missing.stderr
    assert "never downloads" in missing.stderr


@pytest.mark.parametrize("command", ["membership", "harden", "backdoor", "audit"])
def test_codexglue_model_bin_in_every_command(
    codexglue: dict[str, Path], tmp_path: Path, command: str
) -> None:
    """Each command loads the one-output model.bin on its base and runs to a report."""
    base = ("--base", str(codexglue["base"]), "--max-len", str(fm.BLOCK_SIZE))
    model = str(codexglue["weights"])
    members, nonmembers = str(codexglue["train"]), str(codexglue["test"])
    report = tmp_path / "report.json"
    argv = {
        "membership": [
            "membership",
            model,
            "--members",
            members,
            "--nonmembers",
            nonmembers,
            "--bootstrap",
            "20",
        ],
        "harden": [
            "harden",
            model,
            "-o",
            str(tmp_path / "hardened.pt"),
            "--sigma",
            "1",
            "--members",
            members,
            "--nonmembers",
            nonmembers,
            "--bootstrap",
            "20",
            "--boundary-samples",
            "0",
            "--rewrites",
            "0",
            "--queries",
            "2",
        ],
        "backdoor": [
            "backdoor",
            model,
            "--data",
            members,
            "--steps",
            "3",
            "--topk",
            "8",
            "--candidates",
            "8",
            "--trigger-len",
            "2",
            "--victim-samples",
            "6",
            "--heldout",
            "10",
            "--unlearn",
            "--unlearn-scope",
            "full",
            "-o",
            str(tmp_path / "repaired.pt"),
        ],
        "audit": [
            "audit",
            model,
            "--members",
            members,
            "--nonmembers",
            nonmembers,
            "--bootstrap",
            "20",
        ],
    }[command]
    done = codeaudit(
        *argv, *base, "-q", "--report", str(report), "--fail-on", "never", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["command"] == command
    if command == "harden":  # the hardened model is a codeaudit checkpoint that reads raw text
        again = codeaudit(
            "predict",
            str(tmp_path / "hardened.pt"),
            nonmembers,
            "-q",
            "--format",
            "json",
            cwd=tmp_path,
        )
        assert again.returncode in (0, 1), again.stderr
        checkpoint = json.loads(again.stdout)["checkpoint"]
        assert checkpoint["input_format"] == "raw" and checkpoint["outputs"] == 1
    if command == "backdoor":
        assert (tmp_path / "repaired.pt").is_file()


def test_train_pretrained_fine_tunes_a_base_in_a_fresh_process(tmp_path: Path) -> None:
    """``train --pretrained`` on a base encoder (no classification head): the fresh head is
    initialised (it was NaN when initialisation had been switched off process-wide) and the
    fine-tuned checkpoint predicts finite probabilities."""
    from transformers import RobertaConfig, RobertaModel

    base = fm.make_base(tmp_path / "base")
    torch.manual_seed(0)
    RobertaModel(RobertaConfig.from_pretrained(str(base))).save_pretrained(base)
    data = fm.write_data(tmp_path / "train.jsonl", fm.corpus(40))
    model = tmp_path / "model.pt"
    done = codeaudit(
        "train",
        str(data),
        "-o",
        str(model),
        "--arch",
        "transformer",
        "--pretrained",
        str(base),
        "--epochs",
        "1",
        "--max-len",
        "64",
        "--val-split",
        "0",
        "-q",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = tmp_path / "p.json"
    done = codeaudit("predict", str(model), str(data), "-q", "-o", str(report), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    probabilities = predictions(report)
    assert np.isfinite(probabilities).all() and np.ptp(probabilities) > 0
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["checkpoint"]["input_format"] == "tokens"  # what codeaudit trained it on
