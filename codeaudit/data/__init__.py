"""Labelled code data: loading, validation and splitting.

The names below are imported on first use (PEP 562), so that :mod:`codeaudit.data.options` can
be imported by configuration code without numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CODE_FIELDS": "codeaudit.data.loader",
    "FORMATS": "codeaudit.data.loader",
    "LABEL_FIELDS": "codeaudit.data.loader",
    "load_dataset": "codeaudit.data.loader",
    "LABEL_NAMES": "codeaudit.data.samples",
    "Dataset": "codeaudit.data.samples",
    "Sample": "codeaudit.data.samples",
    "Skipped": "codeaudit.data.samples",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codeaudit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
