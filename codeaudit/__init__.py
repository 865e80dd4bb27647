"""codeaudit: audit neural vulnerability-prediction models for membership leakage and backdoors."""

from __future__ import annotations

__version__ = "0.1.0"
