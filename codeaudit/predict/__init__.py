"""``codeaudit predict``: per-sample predictions of a model, with metrics when labelled.

:mod:`~codeaudit.predict.result` (the result types, no torch), :mod:`~codeaudit.predict.engine`
(the predictions) and :mod:`~codeaudit.predict.sections` (how the result reads in a report).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Prediction": "codeaudit.predict.result",
    "PredictMetrics": "codeaudit.predict.result",
    "PredictResult": "codeaudit.predict.result",
    "predict_dataset": "codeaudit.predict.engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codeaudit.predict' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
