"""Confidence bands (``--noise banded``): the label is kept, the ordering across bands is kept,
the confidence within a band is keyed noise (deterministic per input and key), the checkpoint
record round-trips, both exports compute it, and the settings are checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.config import HardenConfig
from codeaudit.data.loader import load_dataset
from codeaudit.defense.evaluate import band_edges, banded
from codeaudit.defense.export import compare_with_wrapper, export_metadata
from codeaudit.defense.exporters import exporter
from codeaudit.errors import CheckpointError, HardenError
from codeaudit.models import noise
from codeaudit.models.nmid import BANDED_NAME, NMID
from codeaudit.params import ParameterError

KEY = "00112233445566778899aabbccddeeff"
EDGES = (0.5, 1.5, 3.0)  # four bands


def _ids(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(3, 5000, (n, 12)))
    return ids, torch.ones_like(ids)


def _logits(margins: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.zeros_like(margins), margins], 1).astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(-60, 60, allow_nan=False).filter(lambda x: abs(x) > 1e-6 or x == 0),
        min_size=1,
        max_size=40,
    )
)
def test_the_label_never_changes(margins: list[float]) -> None:
    defense = NMID(0.0, "probs", key=KEY, edges=EDGES).fit()
    logits = _logits(np.asarray(margins))
    ids, mask = _ids(len(margins))
    out = defense.release(logits, ids, mask)
    assert torch.equal(out["label"], logits.argmax(dim=1))
    p = out["probs"]
    assert torch.equal((p[:, 1] > p[:, 0]).long(), out["label"])  # strict in float32


def test_ordering_across_bands_is_kept_and_within_a_band_is_noise() -> None:
    rng = np.random.default_rng(1)
    margins = rng.uniform(-6, 6, 400)
    defense = NMID(0.0, "top1", key=KEY, edges=EDGES).fit()
    ids, mask = _ids(len(margins), 2)
    confidence = defense.release(_logits(margins), ids, mask)["confidence"].double().numpy()
    band = np.searchsorted(np.asarray(EDGES), np.abs(margins), side="right")
    for b in range(len(EDGES)):  # every confidence of band b lies below every one of b + 1
        assert confidence[band == b].max() < confidence[band == b + 1].min()
    for b in range(len(EDGES) + 1):  # within a band: the interval of the band, nothing more
        inside = confidence[band == b]
        assert inside.min() > 0.5 + 0.49 * b / 4 - 1e-6
        assert inside.max() < 0.5 + 0.49 * (b + 1) / 4 + 1e-6
        # the clean magnitude does not order the released values within a band
        within = np.abs(margins[band == b])
        assert abs(np.corrcoef(within, inside)[0, 1]) < 0.35


def test_one_band_releases_nothing_but_the_label() -> None:
    defense = NMID(0.0, "top1", key=KEY, edges=()).fit()
    ids, mask = _ids(2)
    ids = ids[:1].repeat(2, 1)  # the same input twice, once confident and once not
    out = defense.release(_logits(np.array([0.2, 25.0])), ids, mask)
    assert out["confidence"][0] == out["confidence"][1]


def test_keyed_deterministic_and_key_dependent() -> None:
    margins = np.random.default_rng(3).uniform(-5, 5, 64)
    ids, mask = _ids(64, 4)
    a = NMID(0.0, "top1", key=KEY, edges=EDGES).fit()
    again = NMID(0.0, "top1", key=KEY, edges=EDGES).fit()
    other = NMID(0.0, "top1", key="f" * 32, edges=EDGES).fit()
    first = a.margin(_logits(margins), ids, mask)
    assert torch.equal(first, a.margin(_logits(margins), ids, mask))
    assert torch.equal(first, again.margin(_logits(margins), ids, mask))
    assert not torch.equal(first, other.margin(_logits(margins), ids, mask))
    # unkeyed: fresh noise per query (what keying prevents), never saved
    fresh = NMID(0.0, "top1", key=KEY, edges=EDGES, keyed=False, seed=1).fit()
    assert not torch.equal(
        fresh.margin(_logits(margins), ids, mask), fresh.margin(_logits(margins), ids, mask)
    )
    with pytest.raises(HardenError, match="unkeyed"):
        fresh.record(parent_sha256=None)


def test_precomputed_draws_give_the_defence_exactly() -> None:
    """The calibration's fast path (draws once, bands at any edges) equals asking the model."""
    margins = np.random.default_rng(5).uniform(-5, 5, 50)
    ids, mask = _ids(50, 6)
    defense = NMID(0.0, "top1", key=KEY, edges=EDGES).fit()
    draws = defense.draws(ids, mask).numpy()
    assert np.all((draws > 0) & (draws < 1))
    expected = defense.margin(_logits(margins), ids, mask).numpy()
    assert np.array_equal(banded(_logits(margins).numpy(), draws, EDGES), expected)


def test_edges_are_quantiles_and_ties_merge() -> None:
    margins = np.r_[np.linspace(-4, 4, 101)]
    edges = band_edges(margins, 4)
    assert edges == pytest.approx((1.0, 2.0, 3.0), abs=0.05)
    assert band_edges(margins, 1) == ()
    assert band_edges(np.zeros(20), 8) == (0.0,)  # all tied: one cut


def test_record_round_trips_and_bad_records_are_refused() -> None:
    defense = NMID(0.0, "probs", key=KEY, edges=EDGES).fit()
    record = defense.record(parent_sha256="a" * 64)
    assert record["noise"] == BANDED_NAME and record["bands"] == 4 and record["sigma"] == 0.0
    loaded = NMID.from_record(record)
    ids, mask = _ids(8)
    logits = _logits(np.linspace(-3, 3, 8))
    assert torch.equal(loaded.margin(logits, ids, mask), defense.margin(logits, ids, mask))
    for change in (
        {"edges": [2.0, 1.0], "bands": 3},
        {"edges": [1.0, float("nan")], "bands": 3},
        {"edges": [1.0], "bands": 4},
        {"edges": "1,2"},
        {"outputs": 3},
        {"sigma": 2.0},
    ):
        with pytest.raises(CheckpointError):
            NMID.from_record({**record, **change})


def test_invalid_settings() -> None:
    with pytest.raises(HardenError, match="no sigma"):
        NMID(1.0, "top1", key=KEY, edges=EDGES).fit()
    with pytest.raises(HardenError, match="increasing"):
        NMID(0.0, "top1", key=KEY, edges=(1.0, 1.0)).fit()
    with pytest.raises(HardenError, match="at most"):
        NMID(0.0, "top1", key=KEY, edges=tuple(float(i) for i in range(300))).fit()
    data = {"model": "m.pt", "output": "h.pt", "members": "m", "nonmembers": "n"}
    for bad, field in (
        ({"bands": 4}, "bands"),  # bands without --noise banded
        ({"noise": "banded", "sigma": 2.0}, "sigma"),
        ({"noise": "banded", "expose": "label"}, "noise"),
        ({"noise": "banded", "plot": "c.png"}, "plot"),
        ({"noise": "banded", "members": None, "nonmembers": None, "sigma": None}, "noise"),
        ({"noise": "banded", "bands": 0}, "bands"),
        ({"noise": "shaped"}, "noise"),
    ):
        with pytest.raises(ParameterError) as caught:
            HardenConfig(**{**data, **bad})
        assert caught.value.parameter == field, bad
    assert HardenConfig(**data, noise="banded").bands is None  # calibrated
    assert HardenConfig(**data, noise="banded", bands=8).bands == 8


@pytest.mark.parametrize("fmt", ["torchscript", "torch.export"])
def test_both_exports_compute_the_bands(
    trained: dict, planted_files: dict[str, Path], fmt: str
) -> None:
    _, base, _ = trained["bigru"]
    samples = list(load_dataset(str(planted_files["test"])).samples)[:16]
    hardened = NMID(0.0, "top1", key=KEY, edges=EDGES).fit().transform(base, parent_sha256="c" * 64)
    chosen = exporter(fmt)
    meta = export_metadata(hardened, "c" * 64, fmt)
    assert meta["defense"]["noise"] == "banded" and meta["defense"]["bands"] == 4
    data = chosen.to_bytes(hardened, meta)
    n, worst = compare_with_wrapper(data, hardened, base.encode(samples), load=chosen.load)
    assert n == len(samples) and worst <= 1e-6
    # the file really bands: a model with other edges gives other answers
    wider = NMID(0.0, "top1", key=KEY, edges=(5.0,)).fit().transform(base, parent_sha256="c" * 64)
    with pytest.raises(HardenError):
        compare_with_wrapper(data, wider, base.encode(samples), load=chosen.load)


def test_keyed_uniforms_are_uniform() -> None:
    seeds = torch.arange(20000, dtype=torch.int64) * 2654435761 % 2**32
    u = noise.keyed_uniforms(seeds, noise.key_words(KEY)).numpy()
    assert u.min() > 0 and u.max() < 1
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts.min() > 1800 and counts.max() < 2200
