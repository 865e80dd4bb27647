"""Label-only attacks (Choquette-Choo et al. 2021; Li and Zhang 2021): the attacker sees only
the predicted label.

* Correctness: a member is more often classified correctly. With training accuracy a and test
  accuracy b this alone reaches AUC 0.5 + (a - b) / 2, and no defence that keeps labels can
  stop it.
* Boundary distance, code-specific: apply semantics-preserving rewrites (variable renaming,
  swapped comparisons, redundant parentheses, empty statements) one after another and count how
  many it takes to flip the predicted label. Members sit further from the decision boundary, so
  they survive more rewrites. Misclassified samples score below every correctly classified one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.features import FeatureSet

if TYPE_CHECKING:
    from codeaudit.models.base import VPModel


class CorrectnessAttack(MembershipAttack):
    family = "label-only"

    @property
    def name(self) -> str:
        return "label-only-correctness"

    @property
    def features(self) -> tuple[str, ...]:
        return ("label",)

    def score(self, features: FeatureSet) -> np.ndarray:
        return features.correct


def rewrites_to_flip(
    model: VPModel,
    samples: Sequence[Sample],
    predicted: np.ndarray,
    *,
    max_rewrites: int = 8,
    seed: int = 0,
    batch_size: int = 64,
    skipped: Counter[str] | None = None,
) -> np.ndarray:
    """For each sample, how many successive random rewrites keep its predicted label
    (``max_rewrites + 1`` when none flips it). All rewritten variants go through one batched
    inference. A function over the rewriter's budget gets no rewrite (so it survives them all);
    ``skipped`` counts them by reason."""
    from codeaudit.lang.rewrite import RewriteBudgetError, random_rewrites
    from codeaudit.models.inference import infer

    chains: list[list[str]] = []
    for index, sample in enumerate(samples):
        rng = random.Random(seed * 1_000_003 + index)
        try:
            chain = random_rewrites(sample.code, model.lang_of(sample), max_rewrites, rng)
        except RewriteBudgetError as exc:
            chain = []
            if skipped is not None:
                skipped[exc.reason] += 1
        chains.append(chain)
    flat = [
        Sample(id=f"{s.id}#{k}", code=code, lang=s.lang)
        for s, chain in zip(samples, chains, strict=True)
        for k, code in enumerate(chain)
    ]
    labels = infer(model, model.encode(flat), batch_size=batch_size).logits.argmax(axis=1)
    survived = np.zeros(len(samples), dtype=np.float64)
    position = 0
    for index, chain in enumerate(chains):
        flips = np.flatnonzero(labels[position : position + len(chain)] != predicted[index])
        # no site left for more rewrites counts as surviving the remaining ones
        survived[index] = flips[0] if len(flips) else max_rewrites + 1
        position += len(chain)
    return survived


class BoundaryAttack(MembershipAttack):
    """Scores = rewrites survived (correctly classified) or -1 (misclassified)."""

    family = "label-only"

    def __init__(
        self,
        model: VPModel,
        samples: Sequence[Sample],
        *,
        max_rewrites: int = 8,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.samples = samples
        self.max_rewrites = max_rewrites
        self.seed = seed
        self.batch_size = batch_size
        self.skipped: Counter[str] = Counter()  # functions over the rewrite budget, by reason

    @property
    def name(self) -> str:
        return "label-only-boundary"

    @property
    def features(self) -> tuple[str, ...]:
        return ("label",)

    def score(self, features: FeatureSet) -> np.ndarray:
        if len(features) != len(self.samples):
            raise ValueError("boundary attack: features and samples differ in length")
        survived = rewrites_to_flip(
            self.model,
            self.samples,
            features.predicted,
            max_rewrites=self.max_rewrites,
            seed=self.seed,
            batch_size=self.batch_size,
            skipped=self.skipped,
        )
        return np.where(features.correct > 0, survived, -1.0)
