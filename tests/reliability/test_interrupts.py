"""Ctrl-C (SIGINT) and a cancelled CI job (SIGTERM) in the middle of a real ``codeaudit``
process (training, a membership audit, hardening, unlearning): exit 130, one line on stderr, no
traceback, and no output file (not even a temporary one) left behind. The processes run at the
same time (their start-up is the expensive part)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from codeaudit.data.synthetic import generate
from tests.conftest import write_jsonl
from tests.reliability.harness import TINY, Interrupted, World, files_under, interrupt_after_start


def _train(world: World, out: Path, sig: int) -> Interrupted:
    argv = [
        "train",
        world.inputs["members"],
        "-o",
        str(out / "model.pt"),
        "--report",
        str(out / "train.json"),
        "--epochs",
        "5000",  # minutes of work: the signal always arrives mid-training
        "--val-split",
        "0",
        *TINY,
    ]
    return Interrupted(argv, out, delay=1.0, sig=sig)


def _membership(world: World, out: Path) -> Interrupted:
    records = generate(600, seed=4)
    members = write_jsonl(out.parent / "members.jsonl", records[:300])
    nonmembers = write_jsonl(out.parent / "nonmembers.jsonl", records[300:])
    argv = [
        "membership",
        world.inputs["model"],
        "--members",
        str(members),
        "--nonmembers",
        str(nonmembers),
        "--thorough",  # every classifier and the label-only attack: many seconds of work
        "--report",
        str(out / "membership.json"),
        "--plot",
        str(out / "roc.png"),
    ]
    return Interrupted(argv, out, delay=2.0)


def _harden(world: World, out: Path) -> Interrupted:
    records = generate(600, seed=4)
    members = write_jsonl(out.parent / "members.jsonl", records[:300])
    nonmembers = write_jsonl(out.parent / "nonmembers.jsonl", records[300:])
    argv = [
        "harden",
        world.inputs["model"],
        "-o",
        str(out / "hardened.pt"),
        "--members",
        str(members),
        "--nonmembers",
        str(nonmembers),
        "--sweep",  # calibration, verification and the sweep: many seconds of work
        "--thorough",
        "--export",
        "torchscript",
        "--report",
        str(out / "harden.json"),
    ]
    return Interrupted(argv, out, delay=2.0)


def _unlearn(world: World, out: Path) -> Interrupted:
    records = generate(400, seed=6)
    data = write_jsonl(out.parent / "clean.jsonl", records)
    argv = [
        "backdoor",
        world.inputs["scan_model"],
        "--data",
        str(data),
        "--victim-samples",
        "3",
        "--heldout",
        "5",
        "--steps",
        "2",
        "--unlearn",
        "--unlearn-scope",
        "full",
        "--unlearn-epochs",
        "100000",  # the signal always arrives mid-unlearning
        "-o",
        str(out / "repaired.pt"),
        "--report",
        str(out / "backdoor.json"),
    ]
    return Interrupted(argv, out, delay=4.0)


RUNS = {
    "train-SIGINT": lambda w, out: _train(w, out, signal.SIGINT),
    "train-SIGTERM": lambda w, out: _train(w, out, signal.SIGTERM),
    "membership-SIGINT": _membership,
    "harden-SIGINT": _harden,
    "unlearn-SIGINT": _unlearn,
}


@pytest.fixture(scope="module")
def interrupted(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    runs = {}
    for name, make in RUNS.items():
        out = tmp_path_factory.mktemp(name) / "out"
        out.mkdir()
        runs[name] = (make(world, out), out)
    interrupt_after_start([run for run, _ in runs.values()])
    return runs


@pytest.mark.parametrize("name", list(RUNS))
def test_interrupted_command_exits_130_and_leaves_nothing(
    interrupted: dict[str, tuple], name: str
) -> None:
    run, out = interrupted[name]
    outcome = run.outcome
    assert outcome.code == 130, (outcome.code, outcome.stderr[-2000:])
    assert outcome.stderr.strip().splitlines() == ["codeaudit: interrupted"], outcome.stderr
    assert files_under(out) == [], "partial output"
