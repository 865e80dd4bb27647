"""Reference-model attacks: LiRA (Carlini et al., S&P 2022) and RMIA (Zarifzadeh et al., ICML
2024). Both compare the target's output on a sample with what models trained with and without
that sample produce, so they need the :class:`ReferenceOutputs` of K reference models.

LiRA fits, per sample, Gaussians to the logit-scaled confidence phi = log(p_y / (1 - p_y)) of the
reference models that trained on it (IN) and of those that did not (OUT). Online: the
likelihood ratio of the target's phi under IN and OUT. Offline: the one-sided test against OUT
only (how far above the OUT models the target's phi lies). With few reference models each
per-sample variance rests on a handful of values, so, as Carlini et al. advise, the variance is
pooled over all samples when fewer than 8 values per sample are available.

RMIA scores x by the share of population samples z that x dominates in likelihood ratio:
(p(x|target)/p(x)) / (p(z|target)/p(z)) >= gamma, where p(.) is the mean probability of the true
label over the reference models (all of them: online).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from codeaudit.membership.attacks.base import MembershipAttack
from codeaudit.membership.features import FeatureSet

if TYPE_CHECKING:  # references train models: torch comes with them, not with this module
    from codeaudit.membership.references import ReferenceOutputs

_MIN_PER_SAMPLE = 8
_EPS = 1e-30


def _masked_stats(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-sample mean and std of ``values[k, j]`` over k where ``mask[k, j]``; pooled std when
    samples have fewer than 8 values. Returns (mean, std, min count)."""
    count = mask.sum(axis=0)
    safe = np.maximum(count, 1)
    mean = np.where(mask, values, 0.0).sum(axis=0) / safe
    dev = np.where(mask, values - mean, 0.0)
    if count.min() >= _MIN_PER_SAMPLE:
        std = np.sqrt((dev**2).sum(axis=0) / np.maximum(count - 1, 1))
    else:
        pooled = (dev**2).sum() / max(1, int(count.sum()) - len(count))
        std = np.full(values.shape[1], np.sqrt(pooled))
    return mean, np.maximum(std, 1e-6), int(count.min())


class LiRA(MembershipAttack):
    family = "reference"

    def __init__(self, references: ReferenceOutputs, *, online: bool = True) -> None:
        self.references = references
        self.online = online

    @property
    def name(self) -> str:
        return "lira-online" if self.online else "lira-offline"

    @property
    def features(self) -> tuple[str, ...]:
        return ("confidence",)

    def score(self, features: FeatureSet) -> np.ndarray:
        from scipy.stats import norm

        phi_refs = self.references.phi
        if phi_refs.shape[1] != len(features):
            raise ValueError("reference outputs and target features cover different samples")
        phi = features.logit_scaled_confidence
        in_mask = self.references.in_mask
        mu_out, sd_out, _ = _masked_stats(phi_refs, ~in_mask)
        if not self.online:
            return norm.logcdf(phi, loc=mu_out, scale=sd_out)
        mu_in, sd_in, _ = _masked_stats(phi_refs, in_mask)
        return norm.logpdf(phi, loc=mu_in, scale=sd_in) - norm.logpdf(phi, loc=mu_out, scale=sd_out)


class RMIA(MembershipAttack):
    family = "reference"

    def __init__(
        self,
        references: ReferenceOutputs,
        *,
        gamma: float = 2.0,
        population_target: FeatureSet | None = None,
    ) -> None:
        self.references = references
        self.gamma = gamma
        self.population_target = population_target

    @property
    def name(self) -> str:
        return "rmia"

    @property
    def features(self) -> tuple[str, ...]:
        return ("confidence",)

    def score(self, features: FeatureSet) -> np.ndarray:
        p_x = features.true_class_probability
        ref_x = self.references.p_true.mean(axis=0)
        ratio_x = p_x / np.maximum(ref_x, _EPS)
        if self.population_target is not None and self.references.population:
            p_z = self.population_target.true_class_probability
            ref_z = np.stack([f.true_class_probability for f in self.references.population]).mean(
                axis=0
            )
            ratio_z = p_z / np.maximum(ref_z, _EPS)
        else:  # no separate population: the candidates themselves serve as z
            ratio_z = ratio_x
        sorted_z = np.sort(ratio_z)
        # share of z with ratio_x / ratio_z >= gamma, i.e. ratio_z <= ratio_x / gamma
        dominated = np.searchsorted(sorted_z, ratio_x / self.gamma, side="right")
        return dominated / len(sorted_z)
