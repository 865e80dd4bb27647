from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from codeaudit.metrics import classification_metrics, quality_warnings, rank_auc, wilson_interval


def test_confusion_counts_and_scores_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([1, 0, 1, 0, 1, 0, 0, 1])
    m = classification_metrics(y, p)
    # tp=3 (0,2,7) fn=1 (1) fp=1 (4) tn=3
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(0.75)
    assert m["roc_auc"] is None


def test_no_positive_prediction_gives_zero_precision_not_nan() -> None:
    m = classification_metrics(np.array([1, 0, 1]), np.array([0, 0, 0]))
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0


def test_auc_by_hand_with_ties() -> None:
    # positives score 0.8, 0.4; negatives 0.4, 0.1 -> pairs: (0.8>0.4)=1, (0.8>0.1)=1,
    # (0.4=0.4)=0.5, (0.4>0.1)=1 -> 3.5/4
    assert rank_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == 0.875
    assert rank_auc(np.array([1, 0]), np.array([0.1, 0.9])) == 0.0
    assert rank_auc(np.array([1, 1]), np.array([0.1, 0.9])) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])),
        min_size=2,
        max_size=60,
    )
)
def test_auc_matches_scikit_learn(pairs: list[tuple[int, float]]) -> None:
    y = np.array([a for a, _ in pairs])
    s = np.array([b for _, b in pairs])
    if len(set(y.tolist())) < 2:
        assert rank_auc(y, s) is None
    else:
        assert rank_auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_wilson_interval_by_hand() -> None:
    low, high = wilson_interval(5, 10)  # the textbook case: 0.2366-0.7634
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(15, 15)  # never the degenerate [1, 1] of the normal interval
    assert high == 1.0 and 0.75 < low < 0.85
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _warned(**kw: Any) -> str:
    values = {"n": 200, "vulnerable": 100, "predicted_vulnerable": 90, "accuracy": 0.85}
    values.update(kw)
    values.setdefault("roc_auc", 0.9)
    return " | ".join(quality_warnings("val", **values))


def test_quality_warnings_say_what_is_wrong() -> None:
    assert _warned() == ""  # a good model on enough data: nothing to say
    assert "predicts 'vulnerable' for all 200" in _warned(predicted_vulnerable=200, accuracy=0.5)
    assert "predicts 'not vulnerable' for all" in _warned(predicted_vulnerable=0, accuracy=0.5)
    assert "ROC AUC 0.32 is at or below chance" in _warned(roc_auc=0.32, accuracy=0.4)
    assert "ROC AUC 0.50 is at or below chance" in _warned(roc_auc=0.5)
    low = _warned(vulnerable=150, accuracy=0.74, roc_auc=0.6)
    assert "accuracy 74.0% is no better than always answering the majority label (75.0%)" in low
    few = _warned(n=15, vulnerable=7, predicted_vulnerable=7, accuracy=7 / 15, roc_auc=0.7)
    assert "measured on only 15 functions (7 of the rarer label)" in few
    assert "95% interval 24.8%-69.9%" in few
    rare = _warned(n=500, vulnerable=4, predicted_vulnerable=4, accuracy=0.99)
    assert "(4 of the rarer label)" in rare
    assert quality_warnings("val", n=0, vulnerable=0, predicted_vulnerable=0, accuracy=0.0,
                            roc_auc=None) == []  # fmt: skip
