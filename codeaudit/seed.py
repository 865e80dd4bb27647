"""Seeding every random source codeaudit uses, for runs that repeat exactly on CPU, without
changing the process's random state or torch's modes for anyone else."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def seeded(seed: int, *, deterministic: bool = False) -> Iterator[None]:
    """Run a block with Python's, numpy's and torch's global generators seeded with ``seed``, then
    give every one of them back exactly as it was: a library call must not change the caller's
    random streams or torch's modes.

    ``deterministic`` also switches torch's deterministic algorithms on (warn-only) for the block,
    for CUDA, whose kernels need it (with ``CUBLAS_WORKSPACE_CONFIG``, which the ``codeaudit``
    command sets for its own process). The CPU kernels codeaudit uses repeat exactly without it
    (tests/reliability/test_determinism.py), and switching it costs an import of torch's compiler
    stack (seconds, and a window in which Ctrl-C leaves a half-imported module), so CPU runs do
    not. torch's generators are restored by ``torch.random.fork_rng``."""
    import numpy as np
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            random.seed(seed)
            np.random.seed(seed % (2**32))
            torch.manual_seed(seed)
            if deterministic:
                torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            if deterministic:
                torch.use_deterministic_algorithms(was_deterministic, warn_only=warn_only)
            random.setstate(python_state)
            np.random.set_state(numpy_state)
