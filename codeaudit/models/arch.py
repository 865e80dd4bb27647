"""The architecture names (no torch: a usage check costs milliseconds)."""

from __future__ import annotations

from enum import Enum


class Arch(str, Enum):
    LSTM = "lstm"
    BIGRU = "bigru"
    TRANSFORMER = "transformer"
