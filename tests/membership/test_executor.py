"""Reference and shadow models on every executor: the serial loop, a local process pool and a
Ray cluster give byte-identical outputs, and a failed model ends the run with its index."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codeaudit.config import EXECUTOR_NAMES, AuditConfig, MembershipConfig
from codeaudit.data.samples import Dataset, Sample
from codeaudit.errors import ExecutorError, TrainingError, UsageError
from codeaudit.executor import EXECUTORS, LocalExecutor, RayExecutor, Resources, executor_for
from codeaudit.membership.features import FeatureSet
from codeaudit.membership.references import train_references, train_shadows
from codeaudit.params import ParameterError
from tests.conftest import _tiny_config, planted_records


def _dataset(n: int, seed: int) -> Dataset:
    return Dataset(
        samples=tuple(
            Sample(id=r["id"], code=r["func"], label=r["target"], lang="c")
            for r in planted_records(n, seed=seed)
        )
    )


RECIPE = dataclasses.replace(_tiny_config("lstm", Path("-"), Path("-"), epochs=2), data="-")
CANDIDATES = _dataset(24, seed=5)
POPULATION = _dataset(24, seed=6)


def _references(executor: Any = None) -> Any:
    return train_references(
        CANDIDATES,
        RECIPE,
        2,
        seed=3,
        default_lang="c",
        population=POPULATION,
        batch_size=8,
        executor=executor,
    )


def _shadows(executor: Any = None) -> Any:
    return train_shadows(
        POPULATION, RECIPE, 2, seed=3, default_lang="c", batch_size=8, executor=executor
    )


def _arrays(features: FeatureSet) -> dict[str, Any]:
    return {
        f.name: getattr(features, f.name)
        for f in dataclasses.fields(FeatureSet)
        if f.name != "n_outputs"
    }


def assert_identical(a: tuple[FeatureSet, ...], b: tuple[FeatureSet, ...]) -> None:
    assert len(a) == len(b) and a
    for left, right in zip(a, b, strict=True):
        for name, value in _arrays(left).items():
            other = _arrays(right)[name]
            if isinstance(value, np.ndarray):
                assert value.dtype == other.dtype and value.tobytes() == other.tobytes(), name
            else:
                assert value == other, name


@pytest.fixture(scope="module")
def serial() -> dict[str, Any]:
    return {"references": _references(), "shadows": _shadows()}


def test_the_registry_is_the_config_choices() -> None:
    assert tuple(EXECUTORS) == EXECUTOR_NAMES
    assert all(EXECUTORS[name].name == name for name in EXECUTORS)
    assert type(executor_for(MembershipConfig("m", "a", "b"))) is LocalExecutor
    assert not executor_for(MembershipConfig("m", "a", "b")).parallel  # workers 1: serial loop


@pytest.mark.parametrize(
    ("settings", "flag", "problem"),
    [
        ({"workers": 0}, "workers", ">= 1"),
        ({"cpus_per_model": 0.0}, "cpus_per_model", "> 0"),
        ({"gpus_per_model": -1.0}, "gpus_per_model", ">= 0"),
        ({"gpus_per_model": 0.5}, "gpus_per_model", "--executor ray"),
        ({"ray_address": "auto"}, "ray_address", "--executor ray"),
        ({"executor": "dask"}, "executor", "dask"),
    ],
)
def test_executor_settings_are_checked_before_any_work(
    settings: dict[str, Any], flag: str, problem: str
) -> None:
    for config in (MembershipConfig, AuditConfig):
        base = {"model": "m", "members": "a", "nonmembers": "b"}
        with pytest.raises(ParameterError, match=problem) as caught:
            config(**base, **settings)
        assert caught.value.parameter == flag


def test_ray_missing_is_a_usage_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(UsageError, match=r"pip install 'codeaudit\[ray\]'"):
        MembershipConfig("m", "a", "b", executor="ray")


def test_the_audit_passes_the_executor_to_the_membership_check() -> None:
    from codeaudit.audit import _membership_config

    audit = AuditConfig("m", members="a", nonmembers="b", workers=3, cpus_per_model=2.0)
    derived = _membership_config(audit)
    assert (derived.executor, derived.workers, derived.cpus_per_model) == ("local", 3, 2.0)


def test_the_serial_loop_seeds_each_model_from_its_index(serial: dict[str, Any]) -> None:
    refs = serial["references"]
    assert refs.in_mask.sum(axis=0).tolist() == [1] * len(CANDIDATES)
    assert len(refs.features) == len(refs.population) == 2
    # two models on different halves with different seeds: different outputs
    assert refs.features[0].logits.tobytes() != refs.features[1].logits.tobytes()
    assert len(serial["shadows"].features) == 2 * len(POPULATION)


def test_a_local_pool_gives_the_serial_bytes(serial: dict[str, Any]) -> None:
    pool = LocalExecutor(Resources(workers=2))
    seen: list[tuple[int, int, int]] = []
    refs = train_references(
        CANDIDATES,
        RECIPE,
        2,
        seed=3,
        default_lang="c",
        population=POPULATION,
        batch_size=8,
        executor=pool,
        progress=lambda done, total: seen.append((done, total, threading.get_ident())),
    )
    assert_identical(refs.features, serial["references"].features)
    assert_identical(refs.population, serial["references"].population)
    assert refs.in_mask.tobytes() == serial["references"].in_mask.tobytes()
    assert seen[0][:2] == (0, 2) and seen[-1][:2] == (2, 2)
    assert {ident for _, _, ident in seen} == {threading.get_ident()}  # never the pool's thread
    shadows = _shadows(pool)
    assert_identical((shadows.features,), (serial["shadows"].features,))
    assert shadows.membership.tolist() == serial["shadows"].membership.tolist()


# -- the local pool and the parent; failures (module-level functions: a spawned worker imports
# them by name) -----------------------------------------------------------------------------------


def _in_child() -> bool:
    return multiprocessing.parent_process() is not None


def where_and_threads(child_seconds: float, task: int) -> tuple[int, int]:
    """Which process ran the task, with how many torch threads (a child: slowly)."""
    import torch

    time.sleep(child_seconds if _in_child() else 0.05)
    return os.getpid(), torch.get_num_threads()


def test_the_parent_runs_tasks_while_the_pool_starts() -> None:
    import torch

    original = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        executor = LocalExecutor(Resources(workers=2, cpus_per_model=2.0))
        found = executor.map(where_and_threads, list(range(10)), shared=1.0)
        assert torch.get_num_threads() == 1  # the parent's own setting, back after the map
    finally:
        torch.set_num_threads(original)
    pids = [pid for pid, _ in found]
    # the pool (one process) holds one task at a time: it gets the first, and while it starts
    # and runs it the parent takes every other one instead of waiting behind a backlog
    assert pids[0] != os.getpid()
    assert pids[1:] == [os.getpid()] * 9
    assert [threads for _, threads in found] == [2] * 10  # parent and worker: --cpus-per-model
    assert multiprocessing.active_children() == []


def fail_on_one(shared: Any, task: int) -> int:
    if task == 1:
        raise ValueError("no\nluck")
    return task * shared


def training_error(shared: Any, task: int) -> int:
    raise TrainingError("training data for a model must hold both labels")


def fail_in_parent(child_seconds: float, task: int) -> int:
    if not _in_child():
        raise ValueError("failed in\nthe parent")
    time.sleep(child_seconds)
    return task


def fail_in_child(child_seconds: float, task: int) -> int:
    if _in_child():
        time.sleep(child_seconds)
        raise ValueError("failed in a worker")
    time.sleep(0.05)
    return task


def interrupt_in_parent(child_seconds: float, task: int) -> int:
    if not _in_child():
        raise KeyboardInterrupt
    time.sleep(child_seconds)
    return task


def test_a_failed_task_ends_the_run_with_its_index() -> None:
    pool = LocalExecutor(Resources(workers=2))
    with pytest.raises(ExecutorError, match=r"^reference model 1 failed: ValueError: no luck$"):
        pool.map(fail_on_one, [0, 1, 2], shared=10, label="reference model")
    with pytest.raises(TrainingError, match="both labels"):  # the serial loop's own error
        pool.map(training_error, [0, 1], label="reference model")


@pytest.mark.parametrize(
    ("fn", "raised", "message"),
    [
        # the pool takes task 0 first, the parent task 1
        (
            fail_in_parent,
            ExecutorError,
            r"^shadow model 1 failed: ValueError: failed in the parent$",
        ),
        (fail_in_child, ExecutorError, r"^shadow model 0 failed: ValueError: failed in a worker$"),
        (interrupt_in_parent, KeyboardInterrupt, None),
    ],
)
def test_a_task_that_raises_leaves_no_process_or_thread_behind(
    fn: Any, raised: type[BaseException], message: str | None
) -> None:
    threads = set(threading.enumerate())
    pool = LocalExecutor(Resources(workers=2))
    with pytest.raises(raised, match=message):
        pool.map(fn, [0, 1, 2, 3], shared=0.3, label="shadow model")
    assert multiprocessing.active_children() == []
    assert set(threading.enumerate()) == threads


def die_once(shared: str, task: int) -> int:
    marker = Path(shared) / f"died-{task}"
    if task == 0 and _in_child() and not marker.exists():  # task 0: the pool's first
        marker.touch()
        os._exit(3)  # the worker process dies, as when the kernel kills it for memory
    return task


def always_die(shared: Any, task: int) -> int:
    if _in_child():
        os._exit(3)
    return task  # in the parent (the tests' own process): the task the pool did not take


def test_a_dead_worker_is_retried_then_reported(tmp_path: Path) -> None:
    pool = LocalExecutor(Resources(workers=2))
    assert pool.map(die_once, [0, 1, 2], shared=str(tmp_path)) == [0, 1, 2]
    assert (tmp_path / "died-0").exists()
    # 3 workers: a pool of 2 takes tasks 0 and 1 and dies, three times; the parent runs task 2,
    # never a task a worker died on
    died = r"^shadow models 0, 1 failed: worker processes died 3 times"
    with pytest.raises(ExecutorError, match=died):
        LocalExecutor(Resources(workers=3)).map(always_die, [0, 1, 2], label="shadow model")
    assert multiprocessing.active_children() == []


def test_the_membership_result_does_not_depend_on_the_executor(tmp_path: Path) -> None:
    """The whole check, serial, on two local workers and (with the extra) on a Ray cluster the
    run starts and stops itself: the same report but for timings."""
    import importlib.util

    from codeaudit.api import membership as run_membership
    from codeaudit.report.model import to_jsonable
    from tests.membership.test_audit import memorising_model

    overfit = memorising_model(tmp_path, 40)
    runs = [("local", 1), ("local", 2)]
    if importlib.util.find_spec("ray") is not None:
        runs.append(("ray", 2))
    reports = []
    for executor, workers in runs:
        result = run_membership(
            MembershipConfig(
                model=str(overfit["model"]),
                members=str(overfit["members"]),
                nonmembers=str(overfit["nonmembers"]),
                references=2,
                features="loss",
                n_boot=10,
                device="cpu",
                executor=executor,
                workers=workers,
                threads=1,
            )
        )
        data = to_jsonable(result)
        assert "reference_models" in data.pop("timings")
        data.pop("header")
        reports.append(data)
    if len(runs) == 3:
        import ray

        assert not ray.is_initialized()  # the cluster the run started is gone
    assert {a["attack"] for a in reports[0]["attacks"]} >= {"lira-online", "rmia"}
    for other in reports[1:]:
        assert _differences(reports[0], other) == []


VOLATILE = {"seconds"}  # wall-clock time, wherever it is recorded


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted((set(a) | set(b)) - VOLATILE)
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"[:200]]


# -- ray ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_serial_bytes_and_reports_failures(
    serial: dict[str, Any], ray_cluster: Any
) -> None:
    on_ray = RayExecutor(Resources(workers=2))
    refs = _references(on_ray)
    assert_identical(refs.features, serial["references"].features)
    assert_identical(refs.population, serial["references"].population)
    shadows = _shadows(on_ray)
    assert_identical((shadows.features,), (serial["shadows"].features,))
    with pytest.raises(ExecutorError, match=r"^reference model 1 failed: ValueError: no luck$"):
        on_ray.map(fail_on_one, [0, 1, 2], shared=10, label="reference model")
    assert ray_cluster.is_initialized()  # a cluster the caller started stays up


@pytest.mark.parametrize(("cpus", "gpus"), [(1.0, 0.5), (3.0, 0.0)])
def test_a_model_no_ray_node_can_hold_is_an_error_not_a_wait(
    ray_cluster: Any, cpus: float, gpus: float
) -> None:
    on_ray = RayExecutor(Resources(cpus_per_model=cpus, gpus_per_model=gpus))
    with pytest.raises(
        ExecutorError, match=r"no node of the Ray cluster has .* \(the largest: 2 CPUs, 0 GPUs\)"
    ):
        on_ray.map(fail_on_one, [0], shared=1, label="reference model")
