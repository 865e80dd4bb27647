"""Measuring NMID with the membership suite: what the clean model and the hardened model give
away, to one query, to repeated queries and to queries on rewritten code.

Everything that needs the model is computed once (:func:`observe`): the clean model's outputs
for every member and non-member, their token ids, and the clean logits of semantics-preserving
rewrites of each function. The released outputs at any noise scale are then a pure function of
those (the keyed noise depends only on the ids and the key), so calibrating and sweeping sigma
costs attacks, not inference. The verification itself runs the real hardened model.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np
import torch

from codeaudit.data.samples import Dataset, Sample
from codeaudit.membership.attacks.label_only import BoundaryAttack, CorrectnessAttack
from codeaudit.membership.attacks.threshold import SIGNALS, ThresholdAttack
from codeaudit.membership.evaluate import (
    Evaluated,
    evaluate_trained,
    evaluate_unsupervised,
    make_folds,
)
from codeaudit.membership.features import FeatureSet, all_feature_sets, extract_features
from codeaudit.metrics import rank_auc
from codeaudit.models import noise
from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer, length_buckets
from codeaudit.models.nmid import NMID
from codeaudit.models.tokenizer import Encoding

Progress = Callable[[str, int, int], None]


class AdaptiveAttack(str, Enum):
    """Attacks that adapt to output noise (each runs the score suite on averaged answers)."""

    REPEAT = "repeat-averaging"  # the same question many times, answers averaged
    REWRITE = "rewrite-averaging"  # semantics-preserving rewrites of it, answers averaged


ADAPTIVE_DESCRIPTIONS: dict[AdaptiveAttack, str] = {
    AdaptiveAttack.REPEAT: (
        "query each function --queries times and average the released margins: keyed noise "
        "gives the same answer every time, so this gains nothing; unkeyed noise averages away"
    ),
    AdaptiveAttack.REWRITE: (
        "query --rewrites semantics-preserving rewrites of each function (renamed variables, "
        "swapped comparisons, parentheses, empty statements) and average: different token ids "
        "get fresh noise, so keying cannot stop this; only a larger sigma can"
    ),
}


@dataclass(frozen=True)
class Observations:
    """What the harden audit computes once per sample (members first, then non-members)."""

    samples: tuple[Sample, ...]
    encodings: tuple[Encoding, ...]
    membership: np.ndarray  # [N] 1 = member
    clean: FeatureSet  # the original model's full outputs
    variant_owner: np.ndarray  # [V] index of the sample each rewrite belongs to
    variant_encodings: tuple[Encoding, ...]
    variant_logits: np.ndarray  # [V, 2] the original model's logits on the rewrites
    normals: np.ndarray | None = None  # [N, 2] the defence's noise draws (see with_noise)
    variant_normals: np.ndarray | None = None  # [V, 2]
    #: functions the rewriter skipped (over its per-function budget), by reason
    rewrite_skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, index: np.ndarray) -> Observations:
        index = np.asarray(index, dtype=np.int64)
        position = np.full(len(self), -1, dtype=np.int64)
        position[index] = np.arange(len(index))
        keep = np.flatnonzero(position[self.variant_owner] >= 0)
        return Observations(
            samples=tuple(self.samples[i] for i in index),
            encodings=tuple(self.encodings[i] for i in index),
            membership=self.membership[index],
            clean=self.clean.subset(index),
            variant_owner=position[self.variant_owner[keep]],
            variant_encodings=tuple(self.variant_encodings[i] for i in keep),
            variant_logits=self.variant_logits[keep],
            normals=None if self.normals is None else self.normals[index],
            variant_normals=None if self.variant_normals is None else self.variant_normals[keep],
        )

    def with_noise(self, defense: NMID, model: VPModel) -> Observations:
        """The same observations with the defence's draws for every input (standard normals
        for Gaussian noise, uniforms for confidence bands: :meth:`NMID.draws`)."""
        return replace(
            self,
            normals=defense_normals(defense, model, self.encodings),
            variant_normals=defense_normals(defense, model, self.variant_encodings),
        )

    @property
    def dataset(self) -> Dataset:
        return Dataset(samples=self.samples, path="candidates", sha256=None)


def rewrite_variants(
    samples: Sequence[Sample],
    count: int,
    *,
    seed: int,
    default_lang: str,
    skipped: Counter[str] | None = None,
) -> tuple[list[Sample], np.ndarray]:
    """Up to ``count`` distinct one-step semantics-preserving rewrites per sample (seeded);
    returns the variants and the index of the sample each belongs to. A function over the
    rewriter's budget gets none; ``skipped`` counts them by reason."""
    from codeaudit.lang.rewrite import RewriteBudgetError, over_budget, random_rewrites

    variants: list[Sample] = []
    owner: list[int] = []
    for index, sample in enumerate(samples):
        lang = sample.lang or default_lang
        seen = {sample.code}
        if count > 0:
            reason = over_budget(sample.code, lang)
            if reason is not None:
                if skipped is not None:
                    skipped[reason] += 1
                continue
        for k in range(count):
            rng = random.Random((seed * 1_000_003 + index) * 1_009 + k)
            try:
                versions = random_rewrites(sample.code, lang, 1, rng)
            except RewriteBudgetError:  # checked above; kept for safety
                break
            if versions and versions[0] not in seen:
                seen.add(versions[0])
                variants.append(
                    Sample(id=f"{sample.id}#rw{k}", code=versions[0], label=sample.label, lang=lang)
                )
                owner.append(index)
    return variants, np.asarray(owner, dtype=np.int64)


def observe(
    model: VPModel,
    members: Dataset,
    nonmembers: Dataset,
    *,
    rewrites: int,
    seed: int,
    batch_size: int,
    progress: Progress | None = None,
) -> Observations:
    """One pass of the original model over the members, non-members and their rewrites."""
    samples = tuple(members.samples) + tuple(nonmembers.samples)
    data = Dataset(samples=samples, path="candidates", sha256=None)
    if progress is not None:
        progress("clean outputs", 0, 1)
    clean = extract_features(model, data, batch_size=batch_size)
    encodings = tuple(model.encode(samples))
    if progress is not None:
        progress("clean outputs", 1, 1)
    variant_logits = np.zeros((0, 2), dtype=np.float32)
    variant_encodings: tuple[Encoding, ...] = ()
    owner = np.zeros(0, dtype=np.int64)
    skipped: Counter[str] = Counter()
    if rewrites <= 0:  # the boundary attack still rewrites: count what it will skip
        from codeaudit.lang.rewrite import over_budget

        for sample in samples:
            reason = over_budget(sample.code, sample.lang or model.default_lang)
            if reason is not None:
                skipped[reason] += 1
    if rewrites > 0:
        if progress is not None:
            progress("rewriting functions", 0, 1)
        variants, owner = rewrite_variants(
            samples, rewrites, seed=seed, default_lang=model.default_lang, skipped=skipped
        )
        variant_encodings = tuple(model.encode(variants))
        if variants:
            variant_logits = infer(model, variant_encodings, batch_size=batch_size).logits
        if progress is not None:
            progress("rewriting functions", 1, 1)
    membership = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))].astype(np.int64)
    return Observations(
        samples,
        encodings,
        membership,
        clean,
        owner,
        variant_encodings,
        variant_logits,
        rewrite_skipped=dict(skipped),
    )


# -- the defence applied to cached outputs ---------------------------------------------------


def _batched(
    fn: Callable[[torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor],
    model: VPModel,
    encodings: Sequence[Encoding],
    batch_size: int,
    width: int,
) -> np.ndarray:
    out = np.zeros((len(encodings), width), dtype=np.float64)
    with torch.inference_mode():
        for index in length_buckets([len(e.ids) for e in encodings], batch_size):
            batch = model.collate([encodings[i] for i in index])
            out[index] = fn(batch.input_ids, batch.attention_mask, index).reshape(len(index), -1)
    return out


def defense_normals(
    defense: NMID, model: VPModel, encodings: Sequence[Encoding], batch_size: int = 256
) -> np.ndarray:
    """[N, 2] the defence's draws for each input (keyed: fixed for the input): standard
    normals (Gaussian noise) or uniforms (confidence bands)."""
    if not encodings:
        return np.zeros((0, 2))
    return _batched(
        lambda ids, mask, _: defense.draws(ids, mask).cpu(), model, encodings, batch_size, 2
    )


def query_margins(
    defense: NMID,
    model: VPModel,
    logits: np.ndarray,
    encodings: Sequence[Encoding],
    batch_size: int = 256,
) -> np.ndarray:
    """[N] released margins: the defence asked once about each input, given the original
    model's logits for it (the model itself is deterministic, so this is exactly one query)."""
    if not encodings:
        return np.zeros(0)
    tensor = torch.from_numpy(np.ascontiguousarray(logits))
    return _batched(
        lambda ids, mask, index: defense.margin(tensor[index], ids, mask).cpu(),
        model,
        encodings,
        batch_size,
        1,
    )[:, 0]


def noised(logits: np.ndarray, normals: np.ndarray, sigma: float) -> np.ndarray:
    """Released margins at noise scale ``sigma`` from precomputed normals (the calibration's
    fast path; equal to :func:`query_margins` for the keyed defence)."""
    return noise.noised_margin(
        torch.from_numpy(np.ascontiguousarray(logits)), torch.from_numpy(normals), sigma
    ).numpy()


def banded(logits: np.ndarray, draws: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Released margins of the banded mechanism from precomputed draws (uniforms in column 0):
    equal to :func:`query_margins` for the keyed defence with these edges."""
    return noise.banded_margin(
        torch.from_numpy(np.ascontiguousarray(logits)),
        torch.from_numpy(np.ascontiguousarray(draws[:, 0])),
        torch.tensor(tuple(edges), dtype=torch.float64),
    ).numpy()


def band_edges(margins: np.ndarray, bands: int) -> tuple[float, ...]:
    """``bands - 1`` strictly increasing cuts on ``|margin|``: its quantiles at 1/bands ...
    (bands-1)/bands over ``margins`` (held-out functions' clean margins), so each band holds
    about as many of them; repeated quantiles (ties) are merged, giving fewer bands."""
    if bands < 1:
        raise ValueError("at least one band")
    magnitude = np.abs(np.asarray(margins, dtype=np.float64))
    if bands == 1 or not len(magnitude):
        return ()
    cuts = np.quantile(magnitude, np.arange(1, bands) / bands)
    edges: list[float] = []
    for cut in cuts:
        if math.isfinite(cut) and (not edges or cut > edges[-1]):
            edges.append(float(cut))
    return tuple(edges)


def released_features(clean: FeatureSet, margin: np.ndarray, expose: str) -> FeatureSet:
    """The outputs an attacker of the hardened model works with: pseudo-logits whose softmax is
    what is released, no embedding."""
    logits = noise.pseudo_logits(torch.from_numpy(np.asarray(margin, dtype=np.float64)), expose)
    return replace(
        clean,
        logits=logits.numpy(),
        embeddings=np.zeros((len(clean), 0), dtype=np.float32),
    )


def averaged_margin(
    margin: np.ndarray, variant_margin: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """Per sample, the mean released margin over the sample and its rewrites."""
    n = len(margin)
    total = margin + np.bincount(owner, weights=variant_margin, minlength=n)
    count = 1.0 + np.bincount(owner, minlength=n)
    return total / count


# -- attack suites -----------------------------------------------------------------------------


def score_suite(
    features: FeatureSet,
    membership: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    usable: frozenset[str],
    classifiers: Sequence[str],
    *,
    n_boot: int,
    seed: int,
) -> list[Evaluated]:
    """Every threshold and trained attack that the usable outputs allow."""
    out = [
        evaluate_unsupervised(
            ThresholdAttack(signal), features, membership, folds, n_boot=n_boot, seed=seed
        )
        for signal, (needs, _) in SIGNALS.items()
        if set(needs) <= usable
    ]
    sets = [fs for fs in all_feature_sets() if set(fs) <= usable]
    if sets:
        out += evaluate_trained(
            classifiers, sets, features, membership, folds, n_boot=n_boot, seed=seed
        )
    return out


def label_only_suite(
    model: VPModel,
    obs: Observations,
    features: FeatureSet,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    boundary_samples: int,
    boundary_rewrites: int,
    n_folds: int,
    n_boot: int,
    seed: int,
    batch_size: int,
) -> list[Evaluated]:
    """Correctness on everything; the rewrite-boundary attack on a seeded subset."""
    membership = obs.membership
    out = [
        evaluate_unsupervised(
            CorrectnessAttack(), features, membership, folds, n_boot=n_boot, seed=seed
        )
    ]
    if boundary_samples <= 0:
        return out
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(membership == 1)
    nonmembers = np.flatnonzero(membership == 0)
    half = boundary_samples // 2
    pick = np.sort(np.r_[rng.permutation(members)[:half], rng.permutation(nonmembers)[:half]])
    sub = membership[pick]
    if min(int(sub.sum()), len(pick) - int(sub.sum())) < n_folds:
        return out
    attack = BoundaryAttack(
        model,
        [obs.samples[i] for i in pick],
        max_rewrites=boundary_rewrites,
        seed=seed,
        batch_size=batch_size,
    )
    out.append(
        evaluate_unsupervised(
            attack,
            features.subset(pick),
            sub,
            make_folds(sub, n_folds, seed),
            n_boot=n_boot,
            seed=seed,
        )
    )
    return out


def relabel(
    evaluated: Sequence[Evaluated], prefix: str, family: str = "adaptive"
) -> list[Evaluated]:
    return [replace(ev, attack=f"{prefix}/{ev.attack}", family=family) for ev in evaluated]


def attack_name(ev: Evaluated) -> str:
    return f"{ev.attack} on {'+'.join(ev.features)}"


def strongest(evaluated: Sequence[Evaluated]) -> Evaluated | None:
    def key(ev: Evaluated) -> tuple[float, float, str]:
        tpr = ev.score.tpr_at_fpr.get("0.01")
        return (ev.score.auc, -1.0 if tpr is None else tpr, ev.attack)

    return max(evaluated, key=key) if evaluated else None


SCORE_FEATURES = frozenset({"loss", "confidence", "logits"})


def released_suite(
    obs: Observations,
    margin: np.ndarray,
    variant_margin: np.ndarray | None,
    expose: str,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    classifiers: Sequence[str],
    *,
    n_boot: int,
    seed: int,
    rewrites_label: str = "rewrites",
) -> tuple[list[Evaluated], list[Evaluated]]:
    """The score attacks on one released answer per sample, and on the answers averaged over
    the sample and its rewrites (empty lists when no scores are released)."""
    if expose == "label":
        return [], []
    single = score_suite(
        released_features(obs.clean, margin, expose),
        obs.membership,
        folds,
        SCORE_FEATURES,
        classifiers,
        n_boot=n_boot,
        seed=seed,
    )
    averaged: list[Evaluated] = []
    if variant_margin is not None and len(variant_margin):
        mean = averaged_margin(margin, variant_margin, obs.variant_owner)
        averaged = relabel(
            score_suite(
                released_features(obs.clean, mean, "probs"),  # the mean is not a bare label
                obs.membership,
                folds,
                SCORE_FEATURES,
                classifiers,
                n_boot=n_boot,
                seed=seed,
            ),
            rewrites_label,
        )
    return single, averaged


def label_margins(logits: np.ndarray) -> np.ndarray:
    """What a bare label says, as a margin: +30 for class 1, -30 for class 0 (a tie is 0)."""
    positive = logits[:, 1] > logits[:, 0]
    return np.where(positive, noise.LABEL_MARGIN, -noise.LABEL_MARGIN)


def labels_only_suites(
    obs: Observations,
    predicted_logits: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    classifiers: Sequence[str],
    *,
    n_boot: int,
    seed: int,
) -> tuple[list[Evaluated], list[Evaluated]]:
    """The same score attacks fed labels only: the limit of NMID as sigma grows, and so the
    floor no output noise can push them below. On one query per sample (this includes the
    correctness attack, and class-aware variants a learned attack finds: which true label the
    wrong predictions have), and averaged over the sample's rewrites (the share of rewrites
    that keep the label: a boundary-distance signal)."""
    variant = label_margins(obs.variant_logits) if len(obs.variant_logits) else None
    single, averaged = released_suite(
        obs,
        label_margins(predicted_logits),
        variant,
        "probs",
        folds,
        classifiers,
        n_boot=n_boot,
        seed=seed,
    )
    return relabel(single, "labels", "label-only"), relabel(averaged, "labels", "label-only")


# -- utility -------------------------------------------------------------------------------------


def label_only_floor(predicted: np.ndarray, labels: np.ndarray, membership: np.ndarray) -> float:
    """0.5 + (members accuracy - non-members accuracy) / 2: the correctness attack's AUC."""
    correct = predicted == labels
    gap = float(correct[membership == 1].mean()) - float(correct[membership == 0].mean())
    return 0.5 + gap / 2


def score_roc_auc(labels: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of a vulnerability score (any monotone transform of p(vulnerable))."""
    return rank_auc(labels, score)
