from __future__ import annotations

import pytest

from tests.reliability.harness import TwinRuns, World, make_world, twin_runs


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Valid inputs for every command (a tiny trained BiGRU, its data, a Hugging Face dir)."""
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def twins(world: World, tmp_path_factory: pytest.TempPathFactory) -> TwinRuns:
    """Every command run twice in this process, on the same inputs with the same paths."""
    return twin_runs(world, tmp_path_factory.mktemp("twins"), processes=False)


@pytest.fixture(scope="session")
def process_twins(world: World, tmp_path_factory: pytest.TempPathFactory) -> TwinRuns:
    """Every command run in two fresh processes with different Python hash seeds."""
    return twin_runs(world, tmp_path_factory.mktemp("process-twins"), processes=True)
