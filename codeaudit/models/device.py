"""Choosing the torch device from ``--device auto|cpu|cuda``."""

from __future__ import annotations

from codeaudit.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a UsageError."""
    import torch

    choice = (name or "auto").lower()
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine")
        return choice
    if choice == "cpu":
        return "cpu"
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    raise UsageError(f"--device {name}: unknown device (use {', '.join(DEVICES)})")
