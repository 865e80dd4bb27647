"""Choosing and applying the thread count (codeaudit.threads), and --threads on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from codeaudit import threads
from codeaudit.cli import cli
from codeaudit.errors import UsageError
from codeaudit.threads import CpuSample, ThreadChoice, choose_threads, limit_threads, parse_threads


def test_parse_threads() -> None:
    assert parse_threads("auto") is None and parse_threads(" AUTO ") is None
    assert parse_threads(None) is None
    assert parse_threads("3") == 3 and parse_threads(4) == 4
    for bad in ("0", 0, -1, "two", 1.5, True, "1.0"):
        with pytest.raises(UsageError, match="auto' or a whole number"):
            parse_threads(bad)


def _cgroup_v2(root: Path, proc: Path, limits: dict[str, str]) -> None:
    for relative, text in limits.items():
        directory = root / relative if relative else root
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cpu.max").write_text(text)
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "cgroup").write_text("0::/jobs/ci\n")


def test_cgroup_v2_quota_is_the_tightest_from_the_cgroup_up(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "proc"
    _cgroup_v2(root, proc, {"": "max 100000", "jobs": "300000 100000", "jobs/ci": "150000 100000"})
    assert threads.cgroup_quota(root, proc) == 1.5
    (root / "jobs" / "cpu.max").write_text("50000 100000")  # a parent caps it harder
    assert threads.cgroup_quota(root, proc) == 0.5
    for path in ("jobs/ci", "jobs"):
        (root / path / "cpu.max").write_text("max 100000")
    assert threads.cgroup_quota(root, proc) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "proc"
    group = root / "cpu,cpuacct" / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("200000\n")
    (group / "cpu.cfs_period_us").write_text("100000\n")
    proc.mkdir()
    (proc / "cgroup").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert threads.cgroup_quota(root, proc) == 2.0
    (group / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_quota(root, proc) is None
    assert threads.cgroup_quota(root, tmp_path / "absent") is None


def test_busy_ticks_counts_only_the_allowed_cpus(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  900 0 900 9000 0 0 0 0 0 0\n"
        "cpu0 100 1 10 5000 7 2 3 4 0 0\n"  # busy: user nice system irq softirq steal = 120
        "cpu1 400 0 400 4000 0 0 0 0 0 0\n"
        "intr 1 2 3\nctxt 5\n"
    )
    assert threads._busy_ticks({0}, stat) == 120
    assert threads._busy_ticks({0, 1}, stat) == 920
    assert threads._busy_ticks(None, stat) == 920
    assert threads._busy_ticks({0}, tmp_path / "absent") is None


def test_auto_takes_the_quota_and_what_other_work_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "_affinity", lambda: 8)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "cgroup_quota", lambda: 2.5)
    choice = threads.auto_threads(CpuSample.now())
    assert choice.count == 3 and "cgroup quota 2.5" in choice.reason  # the host's 8 are not ours
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    for busy, expected in ((0.0, 8), (2.6, 5), (7.9, 1), (None, 8)):
        monkeypatch.setattr(threads, "others_busy", lambda since, b=busy: b)
        assert threads.auto_threads(CpuSample.now()).count == expected


def _spinner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs /proc/stat")
def test_others_busy_sees_other_work_and_not_our_own() -> None:
    baseline = threads.others_busy(CpuSample.now(), min_window=0.5)
    since = CpuSample.now()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # this process keeps a CPU busy: not "other work"
        pass
    ours = threads.others_busy(since)
    spinner = _spinner()
    try:
        time.sleep(0.2)
        other = threads.others_busy(CpuSample.now(), min_window=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert baseline is not None and ours is not None and other is not None
    assert other >= 0.7, other  # a process spinning on one CPU
    assert ours < baseline + 0.5, (ours, baseline)


def test_choose_threads_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(2) == ThreadChoice(2, "requested", choose_threads(2).reason)
    assert choose_threads(None).count == 3 and choose_threads(None).source == "OMP_NUM_THREADS"
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # torch ignores it too: auto
    assert choose_threads(None).source == "auto"


def test_limit_threads_applies_and_restores() -> None:
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        from threadpoolctl import threadpool_info

        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("work failed")
    assert torch.get_num_threads() == before


def test_limit_threads_gives_torch_and_openmp_the_count_and_blas_one() -> None:
    from threadpoolctl import threadpool_info

    def counts() -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for pool in threadpool_info():
            found.setdefault(pool["user_api"], set()).add(pool["num_threads"])
        return found

    before = counts()
    with limit_threads(2):
        assert torch.get_num_threads() == 2
        inside = counts()
        assert inside.get("blas", {1}) == {1}  # small matrices: more BLAS threads only cost
        assert inside.get("openmp", {2}) == {2}
    assert counts() == before


def _train(tmp_path: Path, planted_files: dict[str, Path], *extra: str) -> tuple[int, dict, str]:
    from tests.test_cli import TINY

    out = tmp_path / f"m{len(list(tmp_path.iterdir()))}.pt"
    result = CliRunner().invoke(
        cli,
        ["train", str(planted_files["train"]), "-o", str(out), "--epochs", "1", "--arch", "lstm",
         *TINY, "-q", "--format", "json", *extra],
    )  # fmt: skip
    return (
        result.exit_code,
        json.loads(result.stdout) if result.exit_code == 0 else {},
        (result.stderr),
    )


def test_threads_flag_is_used_and_recorded(tmp_path: Path, planted_files: dict[str, Path]) -> None:
    code, report, err = _train(tmp_path, planted_files, "--threads", "1")
    assert code == 0, err
    assert report["threads"]["count"] == 1 and report["threads"]["source"] == "requested"
    code, report, err = _train(tmp_path, planted_files)
    assert code == 0, err
    assert report["threads"]["source"] in ("auto", "OMP_NUM_THREADS")
    assert 1 <= report["threads"]["count"] <= len(threads.os.sched_getaffinity(0))
    code, _, err = _train(tmp_path, planted_files, "--threads", "0")
    assert code == 2 and "--threads" in err and "whole number" in err


def test_threads_setting_in_pyproject(
    tmp_path: Path, planted_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.codeaudit]\nthreads = 1\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    code, report, err = _train(tmp_path, planted_files)
    assert code == 0, err
    assert report["threads"]["count"] == 1 and report["threads"]["source"] == "requested"
    code, report, _ = _train(tmp_path, planted_files, "--threads", "2")  # the flag wins
    assert report["threads"]["count"] == 2
    code, report, _ = _train(tmp_path, planted_files, "--no-config")
    assert report["threads"]["source"] == "auto"
    (project / "pyproject.toml").write_text('[tool.codeaudit]\nthreads = "many"\n')
    code, _, err = _train(tmp_path, planted_files)
    assert code == 2 and "[tool.codeaudit] threads" in err and len(err.strip().splitlines()) == 1


def test_every_command_that_runs_a_model_offers_threads() -> None:
    for command in ("train", "predict", "membership", "harden", "backdoor", "audit"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--threads" in result.stdout, command
