"""How many threads the work uses: ``--threads N``, ``OMP_NUM_THREADS``, or what the CPUs free
for this process allow.

torch's default is one thread per core of the host. Under an affinity mask or a cgroup CPU
quota that is more threads than the process may run at once, and on cores that other work keeps
busy every parallel step waits for its slowest thread: one BiGRU epoch took 334 s with torch's
default threads next to other work and 44 s with one (issue 18). The ``auto`` choice is

1. the CPUs this process may use: its affinity mask, capped by the cgroup CPU quota
   (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us / cpu.cfs_period_us`` in v1) of its cgroup and
   every parent;
2. less what other processes kept busy on those CPUs while codeaudit loaded the model and
   data: the busy time ``/proc/stat`` counts on the allowed CPUs over that window, minus
   codeaudit's own CPU time in it (measured only when the process may use the whole host,
   where the counters are about its CPUs alone);
3. rounded to the nearest whole CPU, at least one.

The choice and why are recorded in every report header (``threads``). The count applies to
torch's intra-op pool and, through threadpoolctl, to the BLAS and OpenMP pools numpy and
scikit-learn use, for the duration of the run only (:func:`limit_threads` restores them).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.errors import UsageError

#: The shortest window the busy CPUs are measured over (seconds); a shorter load waits the rest.
MIN_WINDOW = 0.1


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count a run used and where it came from."""

    count: int
    source: str  # "requested" (--threads, [tool.codeaudit] threads) | "OMP_NUM_THREADS" | "auto"
    reason: str  # for a person: "auto: 2 CPUs available, 0.9 kept busy by other work"

    def describe(self) -> str:
        return f"{self.count} ({self.reason})"


def parse_threads(value: object, where: str = "--threads") -> int | None:
    """``auto`` (None) or a whole number >= 1, from a flag, a setting or the environment."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return None
        if text.isdigit():
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{where} {value!r}: use 'auto' or a whole number >= 1")
    return value


def _affinity() -> int:
    allowed = _allowed_cpus()
    return len(allowed) if allowed is not None else (os.cpu_count() or 1)


def _quota_v2(directory: Path) -> float | None:
    """The tightest ``cpu.max`` from this cgroup up to the root (CPUs), None when unlimited."""
    limits = []
    for path in [directory, *directory.parents]:
        try:
            quota, period = (path / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            limits.append(float(quota) / float(period))
        if path == Path("/sys/fs/cgroup"):
            break
    return min(limits) if limits else None


def _quota_v1(directory: Path) -> float | None:
    try:
        quota = float((directory / "cpu.cfs_quota_us").read_text())
        period = float((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_quota(
    root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self")
) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), None when there is none."""
    try:
        lines = (proc / "cgroup").read_text().splitlines()
    except OSError:
        return None
    found: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        relative = relative.lstrip("/")
        if controllers == "":  # cgroup v2
            quota = _quota_v2(root / relative if relative else root)
        elif "cpu" in controllers.split(","):
            base = next(
                (root / n for n in ("cpu", "cpu,cpuacct", "cpuacct,cpu") if (root / n).is_dir()),
                None,
            )
            if base is None:
                continue
            quota = _quota_v1(base / relative) or _quota_v1(base)
        else:
            continue
        if quota is not None:
            found.append(quota)
    return min(found) if found else None


def _busy_ticks(cpus: set[int] | None, stat: Path = Path("/proc/stat")) -> int | None:
    """Busy clock ticks (user, nice, system, irq, softirq, steal) summed over ``cpus``."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            index = int(name[3:])
            fields = [int(x) for x in rest.split()]
        except ValueError:
            continue
        if cpus is not None and index not in cpus:
            continue
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        total += user + nice + system + irq + softirq + steal
    return total


@dataclass(frozen=True)
class CpuSample:
    """The CPU counters at one moment: start one before loading, choose threads after."""

    wall: float
    own: float  # this process's CPU seconds (all its threads)
    busy: int | None  # busy ticks on the allowed CPUs; None where /proc/stat is unreadable

    @classmethod
    def now(cls) -> CpuSample:
        return cls(time.monotonic(), time.process_time(), _busy_ticks(_allowed_cpus()))


def _allowed_cpus() -> set[int] | None:
    """The CPUs this process may run on (None where the platform cannot say: not Linux)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def others_busy(since: CpuSample, *, min_window: float = MIN_WINDOW) -> float | None:
    """CPUs other processes kept busy on the allowed CPUs since ``since`` (None: unknown)."""
    if since.busy is None:
        return None
    waited = time.monotonic() - since.wall
    if waited < min_window:
        time.sleep(min_window - waited)
    end = CpuSample.now()
    if end.busy is None:
        return None
    window = end.wall - since.wall
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (end.busy - since.busy) / ticks - (end.own - since.own)
    return max(0.0, busy / window)


def auto_threads(since: CpuSample | None = None) -> ThreadChoice:
    """The ``auto`` choice (see the module docs)."""
    affinity = _affinity()
    quota = cgroup_quota()
    cpus = affinity if quota is None else max(1, min(affinity, math.ceil(quota - 1e-9)))
    limits = [f"{affinity} in the affinity mask"]
    if quota is not None:
        limits.append(f"cgroup quota {quota:g}")
    whole_host = quota is None and affinity == (os.cpu_count() or affinity)
    busy = others_busy(since) if since is not None and whole_host else None
    if busy is None:
        return ThreadChoice(cpus, "auto", f"auto: {cpus} CPUs available ({', '.join(limits)})")
    count = max(1, min(cpus, math.floor(cpus - busy + 0.5)))
    return ThreadChoice(
        count, "auto", f"auto: {cpus} CPUs available, {busy:.1f} kept busy by other work"
    )


def choose_threads(requested: int | None, since: CpuSample | None = None) -> ThreadChoice:
    """``requested`` (``--threads``, or ``threads`` in ``[tool.codeaudit]``) when given, else
    ``OMP_NUM_THREADS`` when set, else auto."""
    if requested is not None:
        return ThreadChoice(requested, "requested", "requested with --threads or [tool.codeaudit]")
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            count = parse_threads(env, "OMP_NUM_THREADS")
        except UsageError:
            count = None  # torch ignores what it cannot read too; fall through to auto
        if count is not None:
            return ThreadChoice(count, "OMP_NUM_THREADS", "from OMP_NUM_THREADS")
    return auto_threads(since)


def pool_limits(count: int) -> Any:
    """threadpoolctl's limits for a run of ``count`` threads: the OpenMP pools (torch's, and
    scikit-learn's compiled estimators') at ``count``, the BLAS pools numpy and scipy call
    (OpenBLAS) at one. The attacks' matrices are small (a few thousand rows, at most a few
    hundred columns), and more BLAS threads only cost: on two cores, two made the membership
    audit's scikit-learn stages 3-8x slower (docs/threads.md). torch's own matrix products do not
    go through these BLAS pools; its threads are ``count``. Used as a context manager (restored
    on leaving), or called once in a worker process that keeps them."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits={"openmp": count, "blas": 1})


@contextmanager
def limit_threads(count: int) -> Iterator[None]:
    """Run the body with ``count`` threads in torch and in the OpenMP pools, and one in the BLAS
    pools (:func:`pool_limits`), then put back what was there (nothing else in the process is
    left changed)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with pool_limits(count):
            yield
    finally:
        torch.set_num_threads(before)
