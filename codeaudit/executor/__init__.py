"""Where independent pieces of work run: the reference and shadow models of a membership audit
(each trains one model and returns its outputs, nothing else).

One interface, :class:`Executor`: ``map(fn, tasks, shared=...)`` returns ``[fn(shared, task)
for task in tasks]`` in task order, however the tasks were scheduled. ``fn`` is a module-level
function (shipped by reference); ``shared`` (the data, the training recipe) is shipped once per
worker, not once per task; every task carries all it needs to be reproducible (its seed comes
from its index, never from which worker ran it or when), so every executor returns the same
bytes as the serial loop for the same device and thread count.

The kinds (:data:`EXECUTORS`, ``--executor``):

* ``local``: with ``--workers 1`` the serial loop in this process; with N > 1, this process
  and a pool of N - 1 ``spawn``-ed processes on this machine, all taking tasks from one queue
  (this process starts on its first while the pool starts), each task limited to
  ``--cpus-per-model`` threads.
* ``ray``: tasks on a Ray cluster (``--ray-address``, or a local one started for the run), each
  asking for ``--cpus-per-model`` CPUs and ``--gpus-per-model`` GPUs (fractions allowed); the
  shared data goes through Ray's object store, not paths on a shared disk. Needs the extra:
  ``pip install codeaudit[ray]``.

A worker that dies is retried (:data:`MAX_RETRIES` times; locally in a fresh pool, never in
the parent process); a task that still fails, or raises, ends the run with a one-line error
naming the task (``reference model 3``): never a silently missing model. Nothing here prints,
and the parent process's torch and thread settings are left as they were (workers are separate
processes and set their own; the tasks the parent runs itself run under
:func:`codeaudit.threads.limit_threads`, which restores them).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from codeaudit.errors import CodeAuditError, ExecutorError, UsageError

TaskFn = Callable[[Any, Any], Any]  # (shared, task) -> result
Progress = Callable[[int, int], None]  # (done, total)

#: How many times a task whose worker died is run again before the run fails.
MAX_RETRIES = 2

__all__ = [
    "EXECUTORS",
    "MAX_RETRIES",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "Resources",
    "executor_for",
]


@dataclass(frozen=True)
class Resources:
    """What each task may use and how many run at once."""

    workers: int = 1  # local: processes; ray: tasks in flight at once (1: as the cluster allows)
    cpus_per_model: float = 1.0
    gpus_per_model: float = 0.0
    address: str | None = None  # ray: an existing cluster; None: a local one for the run

    @property
    def threads(self) -> int:
        """torch (and BLAS) threads inside a worker."""
        return max(1, math.floor(self.cpus_per_model))


class Executor(ABC):
    """Runs ``fn(shared, task)`` for every task; results in task order."""

    name: ClassVar[str]

    def __init__(self, resources: Resources | None = None) -> None:
        self.resources = resources or Resources()

    @property
    def parallel(self) -> bool:
        return True

    def device(self, parent: str) -> str:
        """The torch device a task uses, given the run's own."""
        return parent

    @abstractmethod
    def map(
        self,
        fn: TaskFn,
        tasks: Sequence[Any],
        *,
        shared: Any = None,
        label: str = "task",
        progress: Progress | None = None,
    ) -> list[Any]:
        """``[fn(shared, t) for t in tasks]``; ``label`` names a task in errors (``label 3``)."""


def _failed(label: str, index: int, error: BaseException) -> CodeAuditError:
    """The error a failed task ends the run with: codeaudit's own as raised (what the serial
    loop raises), anything else as one line naming the task."""
    if isinstance(error, CodeAuditError):
        return error
    detail = " ".join(str(error).split())[:300]
    return ExecutorError(f"{label} {index} failed: {type(error).__name__}: {detail}")


# -- local ----------------------------------------------------------------------------------------

_SHARED: Any = None  # in a worker process: what the pool's initializer received


def _init_worker(shared: Any, threads: int) -> None:
    """A pool process's setup: its thread count (process-local) and the shared data."""
    import os

    global _SHARED
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    from codeaudit.threads import pool_limits

    torch.set_num_threads(threads)
    pool_limits(threads)  # for the life of the worker process
    _SHARED = shared


def _run_in_worker(fn: TaskFn, task: Any) -> Any:
    return fn(_SHARED, task)


class LocalExecutor(Executor):
    """``--workers 1``: the serial loop, in this process; N > 1: this process and N - 1
    ``spawn``-ed pool processes, all taking tasks from one queue (see :class:`_ParentAndPool`)."""

    name = "local"

    @property
    def parallel(self) -> bool:
        return self.resources.workers > 1

    def map(
        self,
        fn: TaskFn,
        tasks: Sequence[Any],
        *,
        shared: Any = None,
        label: str = "task",
        progress: Progress | None = None,
    ) -> list[Any]:
        if not self.parallel or len(tasks) <= 1:
            return _serial(fn, tasks, shared, progress)
        return _ParentAndPool(self.resources, fn, tasks, shared, label).run(progress)


class _ParentAndPool:
    """One parallel ``map`` on this machine: ``workers - 1`` spawned pool processes and this
    process, the N-th worker, which runs tasks while the pool starts (importing torch in a new
    process takes seconds) and after.

    Task indices wait in one queue. The pool holds at most one task per process: a thread of
    this process (``_feed``) owns the pool, submits the first tasks, and as each finishes takes
    the next index from the queue, also while this process is busy training. This process takes
    the next index after each of its own tasks (with the pool's thread count, under
    :func:`limit_threads`), and when none is left waits for the pool, reporting progress (only
    from here, the calling thread). Tasks a dead worker took down go to a second queue that only
    a fresh pool takes (whatever killed the worker would kill the audit here); after
    :data:`MAX_RETRIES` fresh pools, the run fails. A task that raises, here or in the pool,
    ends the run: nothing new starts, the pool is shut down once its running tasks end, and the
    error names the task."""

    def __init__(
        self, resources: Resources, fn: TaskFn, tasks: Sequence[Any], shared: Any, label: str
    ) -> None:
        self.processes = resources.workers - 1
        self.threads = resources.threads
        self.fn, self.tasks, self.shared, self.label = fn, tasks, shared, label
        self.lock = threading.Condition()  # guards everything below
        self.pending: deque[int] = deque(range(len(tasks)))  # not started: here or in the pool
        self.retry: deque[int] = deque()  # lost with a dead worker: a fresh pool only
        self.died: set[int] = set()  # every task that was ever in ``retry``
        self.results: dict[int, Any] = {}
        self.failure: tuple[int | None, BaseException] | None = None  # (task or None, error)
        self.stop = False  # this process is done (finished, failed, interrupted): start nothing
        self.deaths = 0  # pools lost to a dying worker

    # -- this process ----------------------------------------------------------------------------

    def run(self, progress: Progress | None) -> list[Any]:
        import multiprocessing.spawn

        # a script without the ``__main__`` guard, re-run in a spawned process: the error
        # multiprocessing gives there, before this process trains anything
        check = getattr(multiprocessing.spawn, "_check_not_importing_main", None)
        if check is not None:
            check()
        total = len(self.tasks)
        # the pool's first tasks, fixed before anything starts (this process keeps at least one)
        first = self._take_for_pool(min(self.processes, total - 1))
        feeder = threading.Thread(
            target=self._feed, args=(first,), name="codeaudit-local-pool", daemon=True
        )
        reported = 0
        if progress is not None:
            progress(0, total)
        feeder.start()
        try:
            while True:
                with self.lock:
                    self._raise_failure()
                    index = self.pending.popleft() if self.pending else None
                if index is None:
                    break
                value = self._run_here(index)
                with self.lock:
                    self.results[index] = value
                    done = len(self.results)
                if progress is not None and done > reported:
                    progress(done, total)
                    reported = done
            while reported < total:  # nothing left to take: the pool's last tasks
                with self.lock:
                    if len(self.results) == reported and self.failure is None:
                        self.lock.wait()
                    self._raise_failure()
                    done = len(self.results)
                if progress is not None and done > reported:
                    progress(done, total)
                reported = done
        finally:
            with self.lock:
                self.stop = True
                self.lock.notify_all()
            feeder.join()  # the pool is shut down: nothing is left running
        return [self.results[i] for i in range(total)]

    def _run_here(self, index: int) -> Any:
        from codeaudit.threads import limit_threads

        try:
            with limit_threads(self.threads):  # what a pool process runs with
                return self.fn(self.shared, self.tasks[index])
        except Exception as error:
            failure = _failed(self.label, index, error)
            if failure is error:
                raise
            raise failure from error

    def _raise_failure(self) -> None:
        """With the lock held: the error that ends the run, if there is one."""
        if self.failure is None:
            return
        index, error = self.failure
        failure = error if index is None else _failed(self.label, index, error)
        if failure is error:
            raise error
        raise failure from error

    # -- the pool (its own thread) ---------------------------------------------------------------

    def _take_for_pool(self, count: int) -> list[int]:
        """Up to ``count`` indices for the pool: lost ones first, then pending ones."""
        taken: list[int] = []
        with self.lock:
            while len(taken) < count and (self.retry or self.pending):
                taken.append((self.retry or self.pending).popleft())
        return taken

    def _give_back(self, index: int) -> None:
        with self.lock:
            (self.retry if index in self.died else self.pending).appendleft(index)

    def _feed(self, batch: list[int]) -> None:
        """The pool thread: pools one after the other while workers die, each fed from the
        queue until nothing is left for it; every error is handed to this process."""
        try:
            while batch:
                if not self._one_pool(batch):
                    return  # it ran all it took, and nothing was left to take
                with self.lock:
                    self.deaths += 1
                    if self.stop or self.failure is not None:
                        return
                    if self.deaths > MAX_RETRIES:
                        self.failure = (None, self._died())
                        return
                batch = self._take_for_pool(self.processes)
        except BaseException as error:
            with self.lock:
                if self.failure is None:
                    self.failure = (None, error)
        finally:
            with self.lock:
                self.lock.notify_all()

    def _one_pool(self, batch: list[int]) -> bool:
        """Run ``batch`` and what follows it on a fresh pool; True when a worker died."""
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        futures: dict[Future[Any], int] = {}
        lost = False
        pool = ProcessPoolExecutor(
            max_workers=len(batch),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.shared, self.threads),
        )
        try:
            while True:
                for position, index in enumerate(batch):
                    with self.lock:
                        halt = lost or self.stop or self.failure is not None
                    if halt:
                        for other in batch[position:]:
                            self._give_back(other)
                        break
                    try:  # the first submits start the processes (seconds each)
                        futures[pool.submit(_run_in_worker, self.fn, self.tasks[index])] = index
                    except BrokenProcessPool:
                        lost = True
                        self._give_back(index)
                if not futures:
                    return lost
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                with self.lock:
                    for future in finished:
                        index = futures.pop(future)
                        error = future.exception()
                        if error is None:
                            self.results[index] = future.result()
                        elif isinstance(error, BrokenProcessPool):
                            lost = True  # a worker died: the pool is gone, its tasks go again
                            self.retry.append(index)
                            self.died.add(index)
                        elif self.failure is None:
                            self.failure = (index, error)
                    self.lock.notify_all()
                    stopping = lost or self.stop or self.failure is not None
                batch = [] if stopping else self._take_for_pool(len(finished))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _died(self) -> ExecutorError:
        numbers = ", ".join(map(str, sorted(self.retry)))
        which = f"{self.label}s {numbers}" if len(self.retry) > 1 else f"{self.label} {numbers}"
        return ExecutorError(
            f"{which} failed: worker processes died {self.deaths} times (out of memory?); "
            "try fewer --workers"
        )


def _serial(fn: TaskFn, tasks: Sequence[Any], shared: Any, progress: Progress | None) -> list[Any]:
    results = []
    for index, task in enumerate(tasks):
        if progress is not None:
            progress(index, len(tasks))
        results.append(fn(shared, task))
    if progress is not None:
        progress(len(tasks), len(tasks))
    return results


# -- ray ------------------------------------------------------------------------------------------


def _ray_task(shared: Any, fn: TaskFn, task: Any, threads: int) -> Any:
    """One task on a Ray worker: its thread count (the worker process's own), then the work.
    Ray resolves ``shared`` from the object store (one copy per node)."""
    import torch

    from codeaudit.threads import pool_limits

    torch.set_num_threads(threads)
    with pool_limits(threads):
        return fn(shared, task)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray, which is not installed: pip install 'codeaudit[ray]'"
        ) from None
    return ray


class RayExecutor(Executor):
    """Tasks on a Ray cluster: the one at ``address``, the one this process already joined, or
    a local one started for the run (and shut down after it)."""

    name = "ray"

    def device(self, parent: str) -> str:
        # a worker sees the GPUs Ray assigned to it (CUDA_VISIBLE_DEVICES) and only those
        return "cuda" if self.resources.gpus_per_model > 0 else "cpu"

    def map(
        self,
        fn: TaskFn,
        tasks: Sequence[Any],
        *,
        shared: Any = None,
        label: str = "task",
        progress: Progress | None = None,
    ) -> list[Any]:
        import logging

        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
            }
            if self.resources.address:
                options["address"] = self.resources.address
            elif self.resources.workers > 1:
                options["num_cpus"] = math.ceil(
                    self.resources.workers * self.resources.cpus_per_model
                )
            try:
                ray.init(**options)
            except Exception as error:  # ConnectionError, RuntimeError, ValueError ...
                where = self.resources.address or "a local cluster"
                detail = " ".join(str(error).split())[:200]
                raise ExecutorError(f"cannot start Ray on {where}: {detail}") from error
            started = True
        try:
            return self._run(ray, fn, tasks, shared, label, progress)
        finally:
            if started:
                ray.shutdown()

    def _run(
        self,
        ray: Any,
        fn: TaskFn,
        tasks: Sequence[Any],
        shared: Any,
        label: str,
        progress: Progress | None,
    ) -> list[Any]:
        res = self.resources
        _check_fits(ray, res)
        remote = ray.remote(
            num_cpus=res.cpus_per_model,
            num_gpus=res.gpus_per_model,
            max_retries=MAX_RETRIES,  # a worker that died (system failure) runs again
            retry_exceptions=False,  # an exception in the work would come back the same
        )(_ray_task)
        shared_ref = ray.put(shared)  # once, whatever the number of tasks
        limit = res.workers if res.workers > 1 else len(tasks)
        refs: dict[Any, int] = {}
        results: dict[int, Any] = {}
        following = iter(range(len(tasks)))
        if progress is not None:
            progress(0, len(tasks))

        def submit() -> None:
            index = next(following, None)
            if index is not None:
                refs[remote.remote(shared_ref, fn, tasks[index], res.threads)] = index

        for _ in range(min(limit, len(tasks))):
            submit()
        while refs:
            (ready,), _ = ray.wait(list(refs), num_returns=1)
            index = refs.pop(ready)
            try:
                results[index] = ray.get(ready)
            except Exception as error:
                for ref in refs:
                    ray.cancel(ref, force=True)
                cause = getattr(error, "cause", None)
                raise _failed(label, index, cause if cause is not None else error) from error
            if progress is not None:
                progress(len(results), len(tasks))
            submit()
        return [results[i] for i in range(len(tasks))]


def _check_fits(ray: Any, res: Resources) -> None:
    """A task no node of the cluster can hold would wait for ever: an error now instead."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    if any(
        n.get("CPU", 0) >= res.cpus_per_model and n.get("GPU", 0) >= res.gpus_per_model
        for n in nodes
    ):
        return
    largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    raise ExecutorError(
        f"no node of the Ray cluster has {res.cpus_per_model:g} CPUs and "
        f"{res.gpus_per_model:g} GPUs for one model (the largest: {largest.get('CPU', 0):g} "
        f"CPUs, {largest.get('GPU', 0):g} GPUs); lower --cpus-per-model or --gpus-per-model"
    )


#: Every kind of executor by its ``--executor`` name (codeaudit.config.EXECUTOR_NAMES lists the
#: same names; a test keeps the two equal).
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}


def executor_for(config: Any) -> Executor:
    """The executor a configuration asks for (``executor``, ``workers``, ``ray_address``,
    ``cpus_per_model``, ``gpus_per_model``; defaults where it has none: the serial loop)."""
    name = getattr(config, "executor", "local")
    resources = Resources(
        workers=getattr(config, "workers", 1),
        cpus_per_model=getattr(config, "cpus_per_model", 1.0),
        gpus_per_model=getattr(config, "gpus_per_model", 0.0),
        address=getattr(config, "ray_address", None),
    )
    if name not in EXECUTORS:
        raise UsageError(f"--executor {name!r}: use one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](resources)
