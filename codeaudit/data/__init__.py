"""Labelled code data: loading, validation and splitting.

The names below are imported on first use (PEP 562), so that :mod:`codeaudit.data.options` can
be imported by configuration code without numpy.
"""

from __future__ import annotations

from codeaudit.lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)
