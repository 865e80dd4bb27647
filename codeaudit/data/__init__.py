"""Labelled code data: loading, validation and splitting."""

from __future__ import annotations

from codeaudit.data.loader import CODE_FIELDS, FORMATS, LABEL_FIELDS, load_dataset
from codeaudit.data.samples import LABEL_NAMES, Dataset, Sample, Skipped

__all__ = [
    "CODE_FIELDS",
    "FORMATS",
    "LABEL_FIELDS",
    "LABEL_NAMES",
    "Dataset",
    "Sample",
    "Skipped",
    "load_dataset",
]
