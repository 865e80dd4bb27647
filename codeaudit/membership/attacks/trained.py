"""Trained attack models on output features (the membership paper's gray-box setting).

The attacker knows some members and non-members, learns a classifier on their outputs and
applies it to the rest. Inputs: any combination of embedding, logits, loss and confidence, or the
``probs-label`` block (class probabilities and the one-hot true label, ART's input); the
embedding is standardised and reduced with PCA, the other blocks standardised, all fitted on the
attack-training data only (so the distance-based k-NN and RBF-SVM see scaled inputs).

The distance-based models also read ``probs-label`` when the feature sets are the default ones
(:data:`DISTANCE_FEATURE_SETS`): standardising does not shorten the long tails of log-
probabilities and the loss, so a few extreme samples set an RBF kernel's scale (``gamma="scale"``
divides by the inputs' variance) and a k-NN's distances, and the bulk is crowded together;
probabilities are bounded. On the Big-Vul default target this is what separated codeaudit's SVM
from ART's at 1% FPR (docs/membership-vs-art.md). The other models do not need it: trees split
on ranks, and logistic regression and the MLP fit the log scale better than the bounded one.

Classifiers: logistic regression, an MLP, a random forest, gradient boosting, and (ART's other
attack models) k-nearest neighbours (distance-weighted, so its scores are not a handful of
vote shares), an RBF support-vector machine (scored by its decision function through a
logistic link: the same ranking and the same 0.5 decision rule as the SVM's sign, without
Platt scaling's internal 5-fold refits) and a decision tree (leaves of at least 5 samples).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.features import BLOCKS, FeatureSet

CLASSIFIERS = ("logreg", "mlp", "rf", "gb", "knn", "svm", "dt")
#: The distance-based attack models, and the feature sets they read beside the default ones.
DISTANCE_CLASSIFIERS = ("knn", "svm")
DISTANCE_FEATURE_SETS: tuple[tuple[str, ...], ...] = (("probs-label",),)
_KNN_NEIGHBOURS = 15


def make_classifier(kind: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind == "logreg":
        return LogisticRegression(max_iter=2000, C=1.0)
    if kind == "mlp":
        return MLPClassifier(
            hidden_layer_sizes=(64,),
            max_iter=300,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=seed,
        )
    if kind == "rf":
        return RandomForestClassifier(
            n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1
        )
    if kind == "gb":
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
    if kind == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=_KNN_NEIGHBOURS, weights="distance")
    if kind == "svm":
        from sklearn.svm import SVC

        return SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed)
    if kind == "dt":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)
    raise ValueError(f"unknown attack classifier {kind!r} (use {', '.join(CLASSIFIERS)})")


def fit_classifier(kind: str, seed: int, x: np.ndarray, y: np.ndarray) -> Any:
    """``make_classifier(kind, seed).fit(x, y)``, with Ctrl-C kept a Ctrl-C: scikit-learn's MLP
    catches KeyboardInterrupt inside its training loop, warns "Training interrupted by user" and
    returns a half-trained model, which would let an interrupted audit run on and report."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make_classifier(kind, seed)
        if kind == "knn":  # never more neighbours than training samples
            model.set_params(n_neighbors=min(_KNN_NEIGHBOURS, len(x)))
        model = model.fit(x, y)
    for w in caught:
        if "Training interrupted by user" in str(w.message):
            raise KeyboardInterrupt
    for w in caught:  # everything else is shown as it would have been
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


class BlockPreprocessor:
    """Standardises each output block (and reduces the embedding with PCA); fit on train only."""

    def __init__(self, pca_components: int = 16, seed: int = 0) -> None:
        self.pca_components = pca_components
        self.seed = seed

    def fit(self, features: FeatureSet, blocks: tuple[str, ...] = BLOCKS) -> BlockPreprocessor:
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        self.transforms_: dict[str, list[Any]] = {}
        for name in blocks:
            data = features.block(name)
            steps: list[Any] = [StandardScaler().fit(data)]
            if name == "embedding":
                k = min(self.pca_components, data.shape[1], max(1, data.shape[0] - 1))
                scaled = steps[0].transform(data)
                steps.append(PCA(n_components=k, random_state=self.seed).fit(scaled))
            self.transforms_[name] = steps
        return self

    def transform_block(self, features: FeatureSet, name: str) -> np.ndarray:
        data = features.block(name)
        for step in self.transforms_[name]:
            data = step.transform(data)
        return np.asarray(data, dtype=np.float64)

    def transform(self, features: FeatureSet, blocks: tuple[str, ...]) -> np.ndarray:
        return np.hstack([self.transform_block(features, name) for name in blocks])


class TrainedAttack(MembershipAttack):
    family = "trained"
    supervised = True

    def __init__(
        self,
        classifier: str,
        features: tuple[str, ...],
        *,
        pca_components: int = 16,
        seed: int = 0,
    ) -> None:
        if classifier not in CLASSIFIERS:
            raise ValueError(f"unknown attack classifier {classifier!r}")
        self.classifier = classifier
        self.feature_set = tuple(features)
        self.pca_components = pca_components
        self.seed = seed

    @property
    def name(self) -> str:
        return f"trained-{self.classifier}"

    @property
    def features(self) -> tuple[str, ...]:
        return self.feature_set

    def fit(self, features: FeatureSet, membership: np.ndarray) -> TrainedAttack:
        self.preprocessor_ = BlockPreprocessor(self.pca_components, self.seed).fit(
            features, self.feature_set
        )
        return self.fit_matrix(self.preprocessor_.transform(features, self.feature_set), membership)

    def fit_matrix(self, x: np.ndarray, membership: np.ndarray) -> TrainedAttack:
        """Fit on already preprocessed inputs (lets an audit share one preprocessing per fold)."""
        self.model_ = fit_classifier(self.classifier, self.seed, x, membership)
        return self

    def score(self, features: FeatureSet) -> np.ndarray:
        return self.score_matrix(self.preprocessor_.transform(features, self.feature_set))

    def score_matrix(self, x: np.ndarray) -> np.ndarray:
        return classifier_scores(self.model_, x)


def classifier_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """P(member) from a fitted classifier; an SVM's decision value through a logistic link
    (monotone, 0.5 at its decision boundary)."""
    if not hasattr(model, "predict_proba") or getattr(model, "probability", True) is False:
        decision = np.asarray(model.decision_function(x), dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(decision, -500, 500)))
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
