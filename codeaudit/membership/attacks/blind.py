"""The blind baseline as an attack: a logistic regression on model-free inputs of the code (a
hashed bag of lexer tokens and surface statistics, :mod:`codeaudit.membership.blind`). It never
queries the model, so it measures how members and non-members differ as data, not what the model
remembers (Das, Zhang and Tramer 2024). It is reported apart from the attacks and never ranked
among them.

Like :class:`~codeaudit.membership.attacks.label_only.BoundaryAttack` it holds inputs aligned
with the candidates; ``fit_rows``/``score_rows`` take row indices into them, which is how the
audit cross-fits it on its folds (:func:`~codeaudit.membership.evaluate.evaluate_rows`).
"""

from __future__ import annotations

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.blind import BlindInputs
from codeaudit.membership.features import FeatureSet


class BlindAttack(MembershipAttack):
    family = "blind"
    supervised = True

    def __init__(self, inputs: BlindInputs, *, c: float = 1.0) -> None:
        self.inputs = inputs
        self.c = c

    @property
    def name(self) -> str:
        return "blind-bag-of-tokens"

    @property
    def features(self) -> tuple[str, ...]:
        return ("code",)

    def _matrix(self, rows: np.ndarray) -> object:
        from scipy.sparse import csr_matrix, hstack

        stats = self.scaler_.transform(self.inputs.statistics[rows])
        return hstack([self.inputs.bag[rows], csr_matrix(stats)]).tocsr()  # type: ignore[index]

    def fit_rows(self, rows: np.ndarray, membership: np.ndarray) -> BlindAttack:
        """Fit on the candidates at ``rows`` (their membership in ``membership``)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(self.inputs.statistics[rows])
        self.model_ = LogisticRegression(C=self.c, max_iter=2000).fit(
            self._matrix(rows), membership
        )
        return self

    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self._matrix(rows))[:, 1], dtype=np.float64)

    def _all(self, features: FeatureSet) -> np.ndarray:
        if len(features) != len(self.inputs):
            raise ValueError("blind baseline: features and inputs differ in length")
        return np.arange(len(self.inputs))

    def fit(self, features: FeatureSet, membership: np.ndarray) -> BlindAttack:
        return self.fit_rows(self._all(features), membership)

    def score(self, features: FeatureSet) -> np.ndarray:
        return self.score_rows(self._all(features))
