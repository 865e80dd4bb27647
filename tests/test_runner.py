"""The runner and the check interface: a model in memory is audited without being written, a
check loads nothing itself, settings fail before any loading, and files are written all or none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from codeaudit.check import Check, Context, Inputs, Outcome, Output
from codeaudit.config import MembershipConfig, PredictConfig
from codeaudit.errors import OutputError, UsageError
from codeaudit.models.checkpoint import LoadedModel
from codeaudit.runner import run, write_outputs


def test_a_model_in_memory_is_audited_without_being_written(
    tiny_config,
    planted_files: dict,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from codeaudit import api
    from codeaudit.membership.check import MembershipCheck
    from codeaudit.predict.check import PredictCheck

    model, _ = api.train(
        tiny_config("lstm", planted_files["train"], tmp_path / "m.pt"), write=False
    )
    assert not (tmp_path / "m.pt").exists()
    loaded = LoadedModel.in_memory(model)
    again = LoadedModel.in_memory(model)
    assert loaded.sha256 == again.sha256 and loaded.identity == loaded.sha256
    config = MembershipConfig(
        model="<memory>",
        members=str(planted_files["train"]),
        nonmembers=str(planted_files["test"]),
        features="loss",
        n_boot=10,
        device="cpu",
    )
    result, outcome = run(MembershipCheck(), config, loaded=loaded)
    assert result.header.artifact("model").path == "<memory>"
    assert result.checkpoint.source == "memory" and outcome.outputs == ()
    assert 0.0 <= result.best.auc <= 1.0 and "total" in result.timings
    predicted, _ = run(PredictCheck(), PredictConfig(model="<memory>", data=config.nonmembers),
                       loaded=loaded)  # fmt: skip
    assert predicted.n == 40 and list(Path(tmp_path).iterdir()) == []


def test_settings_fail_before_anything_is_loaded(tmp_path: Path) -> None:
    from codeaudit.membership.check import MembershipCheck
    from codeaudit.params import ParameterError

    missing = str(tmp_path / "missing.pt")
    with pytest.raises(ParameterError, match="folds 1: must be >= 2"):  # the config itself
        MembershipConfig(model=missing, members="m", nonmembers="n", folds=1)
    garbage = tmp_path / "garbage.pt"  # a model file nobody could load: never read here
    garbage.write_bytes(b"not a checkpoint")
    members = tmp_path / "m.jsonl"
    members.write_text("not data either")
    config = MembershipConfig(
        model=str(garbage), members=str(members), nonmembers=str(members), features="gradient"
    )
    with pytest.raises(UsageError, match="unknown feature"):  # the check's own, before loading
        run(MembershipCheck(), config)
    # inputs that are not there at all are named before anything else (no torch needed)
    from codeaudit.errors import CheckpointError, DataError

    with pytest.raises(CheckpointError, match=r"missing\.pt: model not found"):
        run(MembershipCheck(), dataclasses.replace(config, model=missing))
    with pytest.raises(DataError, match=r"gone\.jsonl: data file not found"):
        run(MembershipCheck(), dataclasses.replace(config, nonmembers=str(tmp_path / "gone.jsonl")))


class _Writes(Check):
    command = "writes"
    needs_model = False

    def run(self, inputs: Inputs, config: object, context: Context) -> Outcome:
        with context.stage("work"):
            pass
        assert inputs.model is None and not inputs.data
        return Outcome(None)


def test_outputs_are_written_all_or_none(tmp_path: Path) -> None:
    first, taken = tmp_path / "first.jsonl", tmp_path / "taken.json"
    taken.write_text("the user's")
    outputs = [Output("output", str(first), b"poisoned"), Output("manifest", str(taken), b"{}")]
    with pytest.raises(OutputError, match="exists"):
        write_outputs(outputs, force=False)
    assert not first.exists() and taken.read_text() == "the user's"
    write_outputs(outputs, force=True)
    assert first.read_bytes() == b"poisoned" and taken.read_bytes() == b"{}"


def test_context_times_stages_and_reports_progress() -> None:
    seen: list[tuple[str, int, int]] = []
    context = Context(progress=lambda *event: seen.append(event))
    with context.stage("a"):
        context.reporter("a")(1, 2)
    with context.stage("a"):
        pass
    assert seen == [("a", 1, 2)] and set(context.timings) == {"a"}
    assert _Writes().run(Inputs(), None, context).result is None


class _CountsThreads(Check):
    command = "predict"  # any command the rules know; no rule reads this result
    needs_model = False

    def __init__(self) -> None:
        self.seen: list[int] = []

    def run(self, inputs: Inputs, config: object, context: Context) -> Outcome:
        import torch

        from codeaudit.report.model import Header

        self.seen.append(torch.get_num_threads())
        return Outcome(_Threaded(Header(command="predict")))


@dataclasses.dataclass(frozen=True)
class _Threaded:
    header: object
    findings: tuple = ()


@dataclasses.dataclass(frozen=True)
class _ThreadsConfig:
    threads: int | None
    model: str = "<none>"


def test_the_work_runs_with_the_chosen_threads_and_they_are_put_back() -> None:
    import torch

    before = torch.get_num_threads()
    check = _CountsThreads()
    result, _ = run(check, _ThreadsConfig(threads=1))
    assert check.seen == [1] and torch.get_num_threads() == before
    assert result.header.threads.count == 1 and result.header.threads.source == "requested"
    result, _ = run(check, _ThreadsConfig(threads=None))
    assert result.header.threads.source in ("auto", "OMP_NUM_THREADS")
    assert check.seen[-1] == result.header.threads.count
