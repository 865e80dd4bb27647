"""``codeaudit predict``: per-sample predictions of a model, with metrics when labelled.

:mod:`~codeaudit.predict.result` (the result types, no torch), :mod:`~codeaudit.predict.engine`
(the predictions) and :mod:`~codeaudit.predict.sections` (how the result reads in a report).
"""

from __future__ import annotations

from codeaudit.lazy import lazy_exports

_EXPORTS = {
    "Prediction": "codeaudit.predict.result",
    "PredictMetrics": "codeaudit.predict.result",
    "PredictResult": "codeaudit.predict.result",
    "predict_dataset": "codeaudit.predict.engine",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
