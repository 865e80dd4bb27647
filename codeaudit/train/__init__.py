"""Training vulnerability-prediction models."""

from __future__ import annotations
