from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from codeaudit.metrics import classification_metrics, rank_auc


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
