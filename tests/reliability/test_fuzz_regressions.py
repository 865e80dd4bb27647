"""Inputs that once broke a loader or tokenizer (found by scripts/fuzz.py, the property tests, or
by hand), replayed through the fuzz targets: each must now pass the targets' checks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


def _fuzz_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("codeaudit_fuzz", ROOT / "scripts" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _fuzz_module()
CASES = sorted(p for p in REGRESSIONS.glob("*/*") if p.is_file())


def test_there_are_regressions_for_every_target() -> None:
    assert {p.parent.name for p in CASES} == set(FUZZ.TARGETS)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_fuzz_regression(path: Path) -> None:
    FUZZ.TARGET_FUNCTIONS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("target", ["loader", "tokenizer"])
def test_the_mutation_engine_runs_clean_for_a_moment(target: str, tmp_path: Path) -> None:
    """The dependency-free engine, for two seconds: the script itself works."""
    assert FUZZ.run_mutate(target, 2.0, tmp_path, seed=1) == 0
    assert list(tmp_path.iterdir()) == []
