"""Library calls leave the process's random state and torch's modes as they found them."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from codeaudit.seed import seeded


def _state() -> tuple:
    return (
        random.getstate(),
        np.random.get_state()[1].tobytes(),
        torch.random.get_rng_state().numpy().tobytes(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def test_seeded_gives_everything_back_even_on_error() -> None:
    random.seed(123)
    before = _state()
    with seeded(5):
        first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
        assert not torch.are_deterministic_algorithms_enabled()  # CPU: not needed, not touched
    assert _state() == before
    with seeded(5, deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
    assert _state() == before
    with seeded(5):  # the same seed gives the same streams
        assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first
    with pytest.raises(RuntimeError), seeded(6):
        torch.rand(3)
        raise RuntimeError("interrupted")
    assert _state() == before


def test_training_changes_no_global_state(tiny_config, planted_files: dict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from codeaudit import api

    random.seed(7)
    torch.manual_seed(7)
    before = _state()
    api.train(tiny_config("bigru", planted_files["train"], tmp_path / "m.pt"), write=False)
    assert _state() == before
