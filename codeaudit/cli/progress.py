"""Progress on standard error: a rich bar on a terminal, log lines anywhere else.

A CI job or ``2> log`` has no terminal to draw a bar on, and a run can take many minutes there,
so progress becomes lines: nothing for a run that ends within :data:`QUIET_START` seconds (a
usage error or a bad input stays one line), then a line whenever the stage changes and at least
every :data:`EVERY` seconds, saying what runs, how far it got and how long the command has run::

    codeaudit: [00:15] training: epoch 2/8 (loss 0.4121) 310/1200
    codeaudit: [01:15] training: still on epoch 2/8 (evaluating) 600/1200, no news for 60 s

A thread wakes once a second to write them, so a stage that reports nothing for a long time
still gets its heartbeat line. ``-q`` turns all of it off.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from codeaudit.report.text import printable

QUIET_START = 15.0  # seconds before the first line
EVERY = 60.0  # at least one line this often while the work runs
TICK = 1.0  # how often the writer thread looks


def _kind(stage: str) -> str:
    """What a stage is, without its counters and parenthesised details ("epoch 2/8 (loss 0.4)"
    and "epoch 3/8 (loss 0.3)" are one kind of stage: a line each ``EVERY`` seconds, not per
    step)."""
    return re.sub(r"\([^)]*\)|[\d/.]+", "", stage).strip()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class LogProgress:
    """A ``(stage, done, total)`` callback that records the latest event; a thread writes it."""

    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        quiet_start: float | None = None,
        every: float | None = None,
        tick: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream
        self.quiet_start = QUIET_START if quiet_start is None else quiet_start
        self.every = EVERY if every is None else every
        self.tick = TICK if tick is None else tick
        self.clock = clock
        self.started = clock()
        self.lock = threading.Lock()
        self.stage: str | None = None
        self.done = self.total = 0
        self.updated = self.started  # when the last event came
        self.written_kind: str | None = None
        self.written_at: float | None = None  # when the last line went out
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="codeaudit-progress", daemon=True)

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self.lock:
            self.stage, self.done, self.total = stage, done, total
            self.updated = self.clock()

    def _line(self, now: float) -> str | None:
        with self.lock:
            stage, done, total, updated = self.stage, self.done, self.total, self.updated
        if now - self.started < self.quiet_start:
            return None
        kind = _kind(stage) if stage is not None else None
        last = self.written_at
        if last is not None and kind == self.written_kind and now - last < self.every:
            return None
        self.written_kind, self.written_at = kind, now
        counts = f" {done}/{total}" if total else ""
        where = f"[{_clock(now - self.started)}] {self.label}"
        if stage is None:
            return f"{where}: loading and checking the inputs"
        silent = now - updated
        if last is not None and silent >= self.every:
            return f"{where}: still on {stage}{counts}, no news for {int(silent)} s"
        return f"{where}: {stage}{counts}"

    def _run(self) -> None:
        while not self.stop.wait(self.tick):
            line = self._line(self.clock())
            if line is not None:
                self.stream.write(f"codeaudit: {printable(line, one_line=True)}\n")
                self.stream.flush()

    def __enter__(self) -> LogProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        if self.written_at is not None and exc[0] is None:  # the log says it ended
            elapsed = _clock(self.clock() - self.started)
            label = printable(self.label, one_line=True)
            self.stream.write(f"codeaudit: [{elapsed}] {label}: done\n")
            self.stream.flush()


@contextmanager
def stage_progress(enabled: bool, label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback ``(stage, done, total)`` for the library's long runs: one rich bar on
    stderr that takes each stage's name on a terminal, log lines elsewhere, None with ``-q``."""
    if not enabled:
        yield None
        return
    if not sys.stderr.isatty():
        with LogProgress(label, sys.stderr) as log:
            yield log
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(escape(printable(label, one_line=True)), total=None, extra="")

        def callback(stage: str, done: int, total: int) -> None:
            shown = escape(printable(stage, one_line=True))
            bar.update(task, description=shown, completed=done, total=total)

        yield callback
