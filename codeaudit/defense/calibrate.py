"""Choosing sigma: the smallest noise scale at which the strongest score attack is no better
than the target, measured on a calibration split and never on the data that verify it.

The target is ``max(target_auc, floor + floor_margin)``. An argmax-preserving defence leaves
the labels, and so every label-only attack, untouched, and a score attack can always reproduce
one (a loss computed from the released confidence ranks every correct prediction above every
wrong one). So the floor is what the same score attacks reach when fed labels only (their limit
as sigma grows): at least the correctness floor 0.5 + half the generalisation gap, more when
the model errs differently on members and non-members of each class. No sigma brings an attack
below its floor, so a target under it is replaced by the floor plus the margin, and the report
says so. Attacks that average answers over rewrites of a function (fresh noise per variant)
have their own floor: the same attacks on the rewrites' labels.

Each target is approached with a slack (0.01 below it on the calibration split): a sigma that
only just meets a target on one half misses it on the other about half the time, since both
the attack's AUC and the labels-alone AUC are estimates.

Search: sigma 0 and a doubling grid (0.25 ... 1024, per-logit standard deviation) in increasing
order; the first grid value that meets the target and is confirmed by the next two (the curve
is noisy: this guards against a lucky point) is refined by bisection in log-space against the
last value that failed (three halvings: about 9% resolution). Every point's attacks are
evaluated with the same seeded folds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.defense.evaluate import (
    Observations,
    attack_name,
    band_edges,
    banded,
    label_margins,
    label_only_floor,
    labels_only_suites,
    noised,
    released_suite,
    score_roc_auc,
    strongest,
)
from codeaudit.defense.result import CurvePoint
from codeaudit.membership.evaluate import make_folds

DEFAULT_GRID: tuple[float, ...] = (0.0, *(0.25 * 2**k for k in range(13)))  # 0, 0.25 ... 1024
#: Numbers of confidence bands tried by ``--noise banded``, least private first (1: label only).
BAND_GRID: tuple[int, ...] = (64, 32, 16, 12, 8, 6, 4, 3, 2, 1)


def calibration_split(
    samples: Sequence[Sample], membership: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (calibration, verification): disjoint, covering every sample, seeded.

    Samples sharing a ``pair`` (before/after versions of one function) stay on one side, so the
    verification never sees a near-copy of a calibration sample; groups are drawn per stratum of
    (membership, label) so both sides keep the data's mix.
    """
    if not 0.0 < share < 1.0:
        raise ValueError("the calibration share must lie in (0, 1)")
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        key = sample.pair if sample.pair is not None else f"\0{index}"
        groups.setdefault(key, []).append(index)
    strata: dict[tuple[int, int], list[str]] = {}
    for key, members in groups.items():
        first = members[0]
        label = samples[first].label
        strata.setdefault((int(membership[first]), -1 if label is None else label), []).append(key)
    rng = np.random.default_rng(seed)
    calibration: list[int] = []
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        rng.shuffle(keys)
        size = sum(len(groups[k]) for k in keys)
        taken = 0
        for position, key in enumerate(keys):
            if taken >= share * size or (position == len(keys) - 1 and position > 0):
                break  # the last group always goes to verification, so no side is emptied
            calibration.extend(groups[key])
            taken += len(groups[key])
    chosen = np.zeros(len(samples), dtype=bool)
    chosen[calibration] = True
    return np.flatnonzero(chosen), np.flatnonzero(~chosen)


class CurveEvaluator:
    """The strongest score attacks and the utility at any sigma, on one set of observations;
    and, once, the same attacks fed labels only (their limit as sigma grows)."""

    def __init__(
        self,
        obs: Observations,
        expose: str,
        *,
        classifiers: Sequence[str],
        folds: int,
        seed: int,
    ) -> None:
        if obs.normals is None or obs.variant_normals is None:
            raise ValueError("observations without noise draws (call with_noise first)")
        self.obs = obs
        self.normals = obs.normals
        self.variant_normals = obs.variant_normals
        self.expose = expose
        self.classifiers = tuple(classifiers)
        self.seed = seed
        self.folds = make_folds(obs.membership, folds, seed)
        self.floor = label_only_floor(obs.clean.predicted, obs.clean.labels, obs.membership)
        single, averaged = labels_only_suites(
            obs, obs.clean.logits, self.folds, self.classifiers, n_boot=1, seed=seed
        )
        best_single, best_averaged = strongest(single), strongest(averaged)
        self.labels_only_auc = max(self.floor, best_single.score.auc if best_single else 0.0)
        self.rewrite_labels_only_auc = None if best_averaged is None else best_averaged.score.auc
        members = obs.membership == 1
        labels = obs.clean.labels
        #: the ranking utility of releasing the label alone (a two-level score), non-members
        self.label_roc_auc_nonmembers = score_roc_auc(
            labels[~members], label_margins(obs.clean.logits)[~members].astype(np.float64)
        )
        #: the clean margins of the non-members: where confidence bands are cut
        self.nonmember_margins = self.margins_of(obs, members=False)

    @staticmethod
    def margins_of(obs: Observations, *, members: bool) -> np.ndarray:
        """The original model's margins ``z1 - z0`` on the members or the non-members."""
        clean = obs.clean.logits[:, 1].astype(np.float64) - obs.clean.logits[:, 0]
        return clean[obs.membership == (1 if members else 0)]

    def band_edges(self, bands: int) -> tuple[float, ...]:
        """Cuts for ``bands`` confidence bands, placed on this data's non-members."""
        return band_edges(self.nonmember_margins, bands)

    def point(
        self, sigma: float, *, edges: tuple[float, ...] | None = None, bands: int | None = None
    ) -> CurvePoint:
        """The curve at noise scale ``sigma``, or (``edges``) for confidence bands cut there
        (reported as ``len(edges) + 1`` bands: ties among the quantiles merge bands; ``bands``,
        how many were asked for, is not used)."""
        obs = self.obs
        if edges is not None:
            margin = banded(obs.clean.logits, self.normals, edges)
            variant = (
                banded(obs.variant_logits, self.variant_normals, edges)
                if len(obs.variant_logits)
                else None
            )
        else:
            margin = noised(obs.clean.logits, self.normals, sigma)
            variant = (
                noised(obs.variant_logits, self.variant_normals, sigma)
                if len(obs.variant_logits)
                else None
            )
        point = self.point_of(margin, variant, sigma=sigma)
        return replace(point, bands=None if edges is None else len(edges) + 1)

    def point_of(
        self, margin: np.ndarray, variant: np.ndarray | None, *, sigma: float = 0.0
    ) -> CurvePoint:
        """The strongest score attacks and the utility for released margins of this data
        (``variant``: those of its rewrites), whatever produced them."""
        obs = self.obs
        single, averaged = released_suite(
            obs,
            margin,
            variant,
            self.expose,
            self.folds,
            self.classifiers,
            n_boot=1,
            seed=self.seed,
        )
        best, rewrite = strongest(single), strongest(averaged)
        labels = obs.clean.labels
        members = obs.membership == 1
        return CurvePoint(
            sigma=float(sigma),
            best_auc=None if best is None else best.score.auc,
            best_attack=None if best is None else attack_name(best),
            best_tpr_at_1=None if best is None else best.score.tpr_at_fpr.get("0.01"),
            rewrite_auc=None if rewrite is None else rewrite.score.auc,
            rewrite_attack=None if rewrite is None else attack_name(rewrite),
            roc_auc_members=score_roc_auc(labels[members], margin[members]),
            roc_auc_nonmembers=score_roc_auc(labels[~members], margin[~members]),
        )


class SigmaCalibrator:
    """Finds the smallest sigma whose strongest score attacks meet the targets (see module)."""

    def __init__(
        self,
        target_auc: float = 0.6,
        *,
        floor_margin: float = 0.02,
        slack: float = 0.01,
        grid: Sequence[float] = DEFAULT_GRID,
        confirm: int = 2,
        refine_steps: int = 3,
    ) -> None:
        self.target_auc = target_auc
        self.floor_margin = floor_margin
        self.slack = slack
        self.grid = tuple(grid)
        self.confirm = confirm
        self.refine_steps = refine_steps

    def fit(
        self, evaluator: CurveEvaluator, *, progress: Callable[[int, int], None] | None = None
    ) -> SigmaCalibrator:
        grid = sorted(set(self.grid))
        if not grid or grid[0] < 0:
            raise ValueError("the sigma grid must hold values >= 0")
        _set_targets(self, evaluator)
        points: dict[float, CurvePoint] = {}

        def at(sigma: float) -> CurvePoint:
            if sigma not in points:
                points[sigma] = evaluator.point(sigma)
                if progress is not None:
                    progress(len(points), len(grid) + self.refine_steps)
            return points[sigma]

        def excess(sigma: float) -> float:
            return _excess(at(sigma), self.effective_target_, self.rewrite_target_)

        def meets(sigma: float) -> bool:
            return excess(sigma) <= -self.slack + 1e-12

        found = _first_confirmed(grid, meets, self.confirm)
        if found is None:  # nothing met it: the least leaky grid point, flagged unreached
            self.reached_ = False
            self.sigma_ = min(grid, key=lambda s: (excess(s), s))
        else:
            self.reached_ = True
            high = grid[found]
            if found > 0 and high > 0:
                low = grid[found - 1] if grid[found - 1] > 0 else high / 4
                for _ in range(self.refine_steps):
                    middle = math.sqrt(low * high)
                    if meets(middle):
                        high = middle
                    else:
                        low = middle
            self.sigma_ = float(high)
        self.points_ = tuple(points[s] for s in sorted(points))
        self.auc_at_sigma_ = at(self.sigma_).best_auc
        self.rewrite_auc_at_sigma_ = at(self.sigma_).rewrite_auc
        return self


def _set_targets(calibrator: SigmaCalibrator | BandCalibrator, evaluator: CurveEvaluator) -> None:
    """The targets a calibrator's search meets, from the labels-only floors of ``evaluator``:
    ``floor_``, ``labels_only_auc_``, ``rewrite_labels_only_auc_``, ``effective_target_`` and
    ``rewrite_target_`` (None without rewrites)."""
    c = calibrator
    c.floor_ = evaluator.floor
    c.labels_only_auc_ = evaluator.labels_only_auc
    c.rewrite_labels_only_auc_ = evaluator.rewrite_labels_only_auc
    c.effective_target_ = max(c.target_auc, c.labels_only_auc_ + c.floor_margin)
    c.rewrite_target_ = (
        None
        if c.rewrite_labels_only_auc_ is None
        else max(c.target_auc, c.rewrite_labels_only_auc_ + c.floor_margin)
    )


def _excess(point: CurvePoint, target: float, rewrite_target: float | None) -> float:
    """How far the strongest attack at ``point`` lies above its target (<= 0: met)."""
    over = [] if point.best_auc is None else [point.best_auc - target]
    if point.rewrite_auc is not None and rewrite_target is not None:
        over.append(point.rewrite_auc - rewrite_target)
    return max(over, default=0.0)


def _first_confirmed(grid: Sequence[Any], meets: Callable[[Any], bool], confirm: int) -> int | None:
    """The index of the first grid setting that meets the targets and whose next ``confirm``
    settings meet them too (None: none does)."""
    for i, setting in enumerate(grid):
        if meets(setting) and all(meets(s) for s in grid[i + 1 : i + 1 + confirm]):
            return i
    return None


def sweep(
    evaluator: CurveEvaluator,
    grid: Sequence[float],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CurvePoint, ...]:
    """The privacy-utility curve: every grid point."""
    points = []
    for k, sigma in enumerate(sorted(set(grid))):
        points.append(evaluator.point(sigma))
        if progress is not None:
            progress(k + 1, len(grid))
    return tuple(points)


class BandCalibrator:
    """Chooses the number of confidence bands (``--noise banded``): the most bands (the finest
    ranking) whose strongest score attacks meet the same targets as sigma's, with the same
    slack and confirmation by the next ``confirm`` coarser settings. Bands are cut on the
    calibration split's non-members (``CurveEvaluator.band_edges``). One band releases the
    label and pure noise, so the search always ends at a label-equivalent release."""

    def __init__(
        self,
        target_auc: float = 0.6,
        *,
        floor_margin: float = 0.02,
        slack: float = 0.01,
        grid: Sequence[int] = BAND_GRID,
        confirm: int = 2,
    ) -> None:
        self.target_auc = target_auc
        self.floor_margin = floor_margin
        self.slack = slack
        self.grid = tuple(grid)
        self.confirm = confirm

    def fit(
        self, evaluator: CurveEvaluator, *, progress: Callable[[int, int], None] | None = None
    ) -> BandCalibrator:
        grid = sorted(set(self.grid), reverse=True)  # finest first
        if not grid or grid[-1] < 1:
            raise ValueError("the band grid must hold whole numbers >= 1")
        _set_targets(self, evaluator)
        points: dict[int, CurvePoint] = {}
        #: the cuts of every setting tried, by the number of bands they make
        self.edges_by_bands_: dict[int, tuple[float, ...]] = {}

        def at(bands: int) -> CurvePoint:
            if bands not in points:
                edges = evaluator.band_edges(bands)
                self.edges_by_bands_[len(edges) + 1] = edges
                points[bands] = evaluator.point(0.0, edges=edges, bands=bands)
                if progress is not None:
                    progress(len(points), len(grid))
            return points[bands]

        def excess(bands: int) -> float:
            return _excess(at(bands), self.effective_target_, self.rewrite_target_)

        def meets(bands: int) -> bool:
            return excess(bands) <= -self.slack + 1e-12

        found = _first_confirmed(grid, meets, self.confirm)
        chosen: int | None = None if found is None else grid[found]
        self.reached_ = chosen is not None
        if chosen is None:
            chosen = min(grid, key=lambda b: (excess(b), b))
        self.edges_ = evaluator.band_edges(chosen)
        self.bands_ = len(self.edges_) + 1  # tied quantiles merge bands: the bands released
        self.points_ = tuple(points[b] for b in sorted(points, reverse=True))
        self.auc_at_bands_ = at(chosen).best_auc
        self.rewrite_auc_at_bands_ = at(chosen).rewrite_auc
        return self


def sweep_bands(
    evaluator: CurveEvaluator,
    grid: Sequence[int],
    edges_for: Callable[[int], tuple[float, ...]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CurvePoint, ...]:
    """The frontier of the banded mechanism: every number of bands in ``grid`` (cut by
    ``edges_for``: on the calibration split's non-members when there is one), finest first."""
    points = []
    for k, bands in enumerate(sorted(set(grid), reverse=True)):
        points.append(evaluator.point(0.0, edges=edges_for(bands), bands=bands))
        if progress is not None:
            progress(k + 1, len(grid))
    return tuple(points)
