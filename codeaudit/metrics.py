"""Classification metrics, written out so each can be checked against a hand computation.

The positive class is 1 (vulnerable). Undefined values (precision with no positive prediction,
ROC AUC with one class) are 0.0 and None respectively, as in scikit-learn's zero_division=0.
"""

from __future__ import annotations

import numpy as np


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic, ties counted half; None with a single class."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, p_positive: np.ndarray | None = None
) -> dict[str, float | int | None]:
    """Accuracy, precision, recall, F1 (positive class 1), ROC AUC and the confusion counts."""
    t = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    if t.shape != p.shape:
        raise ValueError("labels and predictions differ in length")
    tp = int(((t == 1) & (p == 1)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    n = len(t)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": rank_auc(t, p_positive) if p_positive is not None else None,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }
