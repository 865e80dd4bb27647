"""Checkpoint supply chain: every report records the sha256 of the model and data it audited (and
``train`` the sha256 of the model it wrote, and of its data inside the checkpoint), so a report
can be tied to the exact files it describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeaudit.io import sha256_file
from tests.reliability.harness import COMMANDS, TwinRuns, World, invoke


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_report_records_the_sha256_of_its_inputs(twins: TwinRuns, name: str) -> None:
    command = COMMANDS[name]
    out = twins.runs[0] / name
    report = json.loads((out / command.report).read_text())
    assert command.hashed or command.writes_model
    for role, slot in command.hashed.items():
        entry = report[role]
        assert entry["path"] == twins.inputs[slot]
        assert entry["sha256"] == sha256_file(twins.inputs[slot]), role
    if command.writes_model:
        model = out / command.writes_model
        # the report names the file it wrote (under the first run's path) and its hash
        role = command.output_role
        assert report[role]["path"].endswith(command.writes_model)
        assert report[role]["sha256"] == sha256_file(model)
    for sarif in (f for f in command.outputs if f.endswith(".sarif")):
        artifacts = json.loads((out / sarif).read_text())["runs"][0]["artifacts"]
        hashes = {a["hashes"]["sha-256"] for a in artifacts if "hashes" in a}
        assert {sha256_file(twins.inputs[s]) for s in command.hashed.values()} <= hashes


def test_the_checkpoint_records_the_data_it_was_trained_on(twins: TwinRuns) -> None:
    import torch

    name = next(n for n, c in COMMANDS.items() if n == "train")
    command = COMMANDS[name]
    checkpoint = torch.load(twins.runs[0] / name / "model.pt", weights_only=True)
    data = twins.inputs[command.hashed["data"]]
    assert checkpoint["metadata"]["data_sha256"] == sha256_file(data)


def test_a_hugging_face_directory_is_hashed_as_a_whole(world: World, tmp_path: Path) -> None:
    import shutil

    model = shutil.copytree(world.hf_dir, tmp_path / "hf")
    report = tmp_path / "r.json"
    outcome = invoke(["predict", str(model), world.inputs["data"], "--report", str(report)])
    assert outcome.code == 0, outcome.stderr
    recorded = json.loads(report.read_text())["model"]["sha256"]
    assert recorded == sha256_file(model) == sha256_file(world.hf_dir)
    (model / "config.json").write_bytes((model / "config.json").read_bytes() + b" ")
    assert sha256_file(model) != recorded  # any file of the directory changes it
