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


#: Below this many labelled functions (or of the rarer label) a measured quality is mostly noise.
FEW_SAMPLES = 30
FEW_OF_A_LABEL = 10


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def quality_warnings(
    where: str,
    *,
    n: int,
    vulnerable: int,
    predicted_vulnerable: int,
    accuracy: float,
    roc_auc: float | None,
) -> list[str]:
    """What a reader of a model's measured quality must be told: that it predicts one class for
    everything, ranks at or below chance, is no better than always answering the majority label,
    or was measured on too few functions to mean much (with the accuracy's 95% interval)."""
    if n <= 0:
        return []
    found = []
    one_class = n >= 2 and predicted_vulnerable in (0, n)
    if one_class:
        label = "vulnerable" if predicted_vulnerable else "not vulnerable"
        found.append(
            f"{where}: the model predicts '{label}' for all {n} functions, so it does not tell "
            "them apart (undertrained, or trained on one class: check the class balance, the "
            "epochs and the learning rate)"
        )
    both = 0 < vulnerable < n
    majority = max(vulnerable, n - vulnerable) / n
    if both and roc_auc is not None and roc_auc <= 0.5:
        found.append(
            f"{where}: ROC AUC {roc_auc:.2f} is at or below chance (0.5): the model ranks these "
            "functions no better than a coin toss, or the wrong way round (do the labels mean "
            "what they meant in training?)"
        )
    elif both and not one_class and accuracy <= majority:
        found.append(
            f"{where}: accuracy {accuracy:.1%} is no better than always answering the majority "
            f"label ({majority:.1%})"
        )
    rarer = min(vulnerable, n - vulnerable)
    if n < FEW_SAMPLES or (both and rarer < FEW_OF_A_LABEL):
        low, high = wilson_interval(round(accuracy * n), n)
        found.append(
            f"{where}: measured on only {n} functions ({rarer} of the rarer label): too few to "
            f"mean much (accuracy {accuracy:.1%}, 95% interval {low:.1%}-{high:.1%})"
        )
    return found
