"""The one shape every check has: a pure computation on inputs that are already loaded.

A check (``predict``, ``membership``, ``harden``, ``backdoor``, ``train``) is a :class:`Check`:
it declares which data files it reads and which files it will write, and its :meth:`Check.run`
takes the loaded :class:`Inputs`, its configuration and a :class:`Context` (device, progress,
stage timing) and returns an :class:`Outcome`: its typed result, the files to write as bytes, and
the model it made, if any. It loads nothing from paths and writes nothing, so a model in memory
can be audited without being written, and a check can run wherever its inputs are (a test, the
``audit`` command that runs several checks on one loaded model, a worker process).

:mod:`codeaudit.runner` is the only code that loads inputs, times the whole run, stamps the
report header, evaluates rules and hands the outputs to whoever writes them (the command line,
or the Python API).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class DataInput:
    """A data file a check reads: its role in the report (``members``), path and whether every
    record must carry a label."""

    role: str
    path: str
    require_labels: bool = True


@dataclass(frozen=True)
class FileInput:
    """Another file a check reads (a poison manifest): its role, path and how to read it."""

    role: str
    path: str
    load: Callable[[str], Any]


@dataclass(frozen=True)
class OutputPath:
    """A file a check will write: its role in the report, its path, and what it is called in
    messages (``model file exists (pass --force to overwrite)``)."""

    role: str
    path: str
    what: str = "output"


@dataclass(frozen=True)
class Inputs:
    """What a check computes on: the loaded model (a
    :class:`~codeaudit.models.checkpoint.LoadedModel`, None for a check without one), the
    loaded data sets and any other files it reads, by role."""

    model: Any = None
    data: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Any] = field(default_factory=dict)  # other inputs, read, by role

    def dataset(self, role: str) -> Any:
        return self.data[role]


@dataclass(frozen=True)
class Output:
    """A file a check made, to be written by the edge (atomically, never over a file without
    ``--force``)."""

    role: str  # "output" (the command's -o), "export-torchscript", "roc-plot", "manifest", ...
    path: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    """What a check returns: its result (header and findings are the runner's), the files it
    made, and the model it made (trained, hardened, repaired) for Python callers."""

    result: Any
    outputs: tuple[Output, ...] = ()
    model: Any = None


@dataclass
class Context:
    """Where a check runs and how it reports: the torch device, a progress callback and the time
    each stage took."""

    device: str = "cpu"
    progress: Progress | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def reporter(self, stage: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for one stage."""
        return lambda done, total: self.report(stage, done, total)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (seconds add up when a stage runs more than once)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.timings[name] = self.timings.get(name, 0.0) + elapsed


class Check(ABC):
    """One subsystem's check. Subclasses set :attr:`command` and implement :meth:`run`; the
    defaults say: reads a model, no data files, writes nothing, findings target the model."""

    command: ClassVar[str]
    needs_model: ClassVar[bool] = True

    def validate(self, config: Any) -> None:  # noqa: B027  (optional: most checks have none)
        """Refuse settings that cannot work together, before anything is loaded."""

    def check_inputs(self, inputs: Inputs, config: Any) -> None:  # noqa: B027  (optional)
        """Refuse loaded inputs the check cannot use whatever the model computes (a data set with
        one label, a hardened model where scores are needed): a one-line error, raised before any
        check of a run computes anything. What only the model's answers can show (too few
        functions it gets right) is the check's own business, in :meth:`run`."""

    def data_inputs(self, config: Any) -> list[DataInput]:
        """The data files ``config`` names, in report order."""
        return []

    def file_inputs(self, config: Any) -> list[FileInput]:
        """Other files ``config`` names (not data sets), in report order."""
        return []

    def output_paths(self, config: Any) -> list[OutputPath]:
        """Every file the check will write, checked before any work."""
        return []

    def target(self, config: Any) -> str:
        """What findings are about (a path)."""
        return str(config.model)

    @abstractmethod
    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        """The check itself: loaded inputs in, result and files out; no loading, no writing."""
