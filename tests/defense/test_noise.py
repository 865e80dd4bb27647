"""The keyed noise: exact integer hashing, a real standard normal, determinism, and argmax
preservation for any logits and any sigma (property-based)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codeaudit.models import noise

KEY = noise.key_words("0123456789abcdef0123456789abcdef")


def py_fmix32(h: int) -> int:
    """MurmurHash3's fmix32, written with Python's unbounded integers."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def test_mul32_and_fmix32_match_unbounded_integer_arithmetic() -> None:
    rng = np.random.default_rng(0)
    values = [0, 1, 0xFFFFFFFF, 0x80000000, *rng.integers(0, 2**32, 200).tolist()]
    x = torch.tensor(values, dtype=torch.int64)
    for c in (0x85EBCA6B, 0xC2B2AE35, 0x9E3779B9, 0xFFFFFFFF, 1):
        expected = [(v * c) % 2**32 for v in values]
        assert noise._mul32(x, c).tolist() == expected
    assert noise._fmix32(x).tolist() == [py_fmix32(v) for v in values]


def _batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def test_hash_ignores_padding_and_batch_but_not_order_content_or_key() -> None:
    a, b = [5, 9, 2, 7], [5, 9, 2, 7, 1]
    ids, mask = _batch([a, b])
    h = noise.keyed_hash(ids, mask, KEY)
    # padding content and width do not matter; the same row alone gives the same hash
    padded = torch.cat([ids, torch.full((2, 3), 99)], dim=1)
    pmask = torch.cat([mask, torch.zeros((2, 3), dtype=torch.int64)], dim=1)
    assert torch.equal(noise.keyed_hash(padded, pmask, KEY), h)
    alone_ids, alone_mask = _batch([a])
    assert noise.keyed_hash(alone_ids, alone_mask, KEY)[0] == h[0]
    # content, order, length and key all change it
    for other in ([5, 9, 2, 8], [9, 5, 2, 7], [5, 9, 2], [5, 9, 2, 7, 0]):
        o_ids, o_mask = _batch([other])
        assert noise.keyed_hash(o_ids, o_mask, KEY)[0] != h[0]
    other_key = noise.key_words("fedcba9876543210fedcba9876543210")
    assert noise.keyed_hash(ids, mask, other_key)[0] != h[0]


def test_keyed_normals_are_standard_normal_and_independent() -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    ids = torch.from_numpy(rng.integers(0, 30000, (20000, 12)))
    mask = torch.ones_like(ids)
    z = noise.keyed_normals(noise.keyed_hash(ids, mask, KEY), KEY, 2).numpy()
    for column in z.T:
        assert stats.kstest(column, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.03
    # repeated draws for the same inputs are identical (deterministic), not fresh
    again = noise.keyed_normals(noise.keyed_hash(ids, mask, KEY), KEY, 2).numpy()
    assert np.array_equal(z, again)


def test_keyed_margin_is_exact_across_batch_compositions() -> None:
    rng = np.random.default_rng(2)
    rows = [rng.integers(0, 5000, rng.integers(3, 40)).tolist() for _ in range(37)]
    ids, mask = _batch(rows)
    logits = torch.from_numpy(rng.normal(0, 3, (37, 2)).astype(np.float32))
    full = noise.keyed_margin(logits, ids, mask, KEY, 5.0)
    for i in range(37):
        one_ids, one_mask = _batch([rows[i]])
        assert noise.keyed_margin(logits[i : i + 1], one_ids, one_mask, KEY, 5.0)[0] == full[i]


finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(
        st.one_of(
            st.tuples(finite, finite),
            finite.map(lambda v: (v, v)),  # exact ties
            finite.map(lambda v: (v, float(np.nextafter(np.float32(v), np.float32(np.inf))))),
        ),
        min_size=1,
        max_size=16,
    ),
    sigma=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e6)),
    seed=st.integers(0, 2**31 - 1),
    expose=st.sampled_from(["label", "top1", "probs"]),
)
def test_released_label_is_always_the_clean_argmax(
    pairs: list[tuple[float, float]], sigma: float, seed: int, expose: str
) -> None:
    logits = torch.tensor(pairs, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50000, (len(pairs), 9), generator=g)
    mask = torch.ones_like(ids)
    margin = noise.keyed_margin(logits, ids, mask, KEY, sigma)
    out = noise.release(margin, expose)
    clean = logits.argmax(dim=1)  # ties go to class 0
    assert torch.equal(out["label"], clean)
    pseudo = noise.pseudo_logits(margin, expose)
    assert torch.equal(pseudo.argmax(dim=1), clean)
    if expose == "top1":
        conf = out["confidence"]
        assert torch.all(conf >= 0.5) and torch.all(conf <= 1.0)
        assert sorted(out) == ["confidence", "label"]
    elif expose == "probs":
        probs = out["probs"]
        assert torch.equal(probs.argmax(dim=1), clean)
        assert torch.allclose(probs.sum(dim=1), torch.ones(len(pairs)), atol=1e-6)
        assert sorted(out) == ["label", "probs"]
    else:
        assert sorted(out) == ["label"]


def test_sigma_zero_releases_the_clean_probabilities() -> None:
    logits = torch.tensor([[0.3, 2.0], [1.5, -1.0], [0.0, 0.0]])
    ids, mask = _batch([[1, 2], [3, 4], [5]])
    probs = noise.release(noise.keyed_margin(logits, ids, mask, KEY, 0.0), "probs")["probs"]
    assert torch.allclose(probs, torch.softmax(logits, dim=1), atol=1e-6)


def test_noise_grows_with_sigma_and_is_reflected_not_clipped() -> None:
    rng = np.random.default_rng(3)
    ids = torch.from_numpy(rng.integers(0, 30000, (4000, 10)))
    mask = torch.ones_like(ids)
    logits = torch.tensor([[0.0, 1.0]]).repeat(4000, 1)  # margin +1 everywhere
    small = noise.keyed_margin(logits, ids, mask, KEY, 0.1).numpy()
    large = noise.keyed_margin(logits, ids, mask, KEY, 10.0).numpy()
    assert small.std() < 0.2 and large.std() > 5.0
    assert (large > 0).all()  # reflected onto the predicted side
    assert len(np.unique(np.round(large, 6))) > 3900  # no point mass at a clip value


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 31, "G" * 32])
def test_key_words_rejects_nothing_silently(bad: str) -> None:
    from codeaudit.errors import HardenError
    from codeaudit.models.nmid import check_key

    with pytest.raises(HardenError):
        check_key(bad)


def test_new_keys_are_fresh() -> None:
    keys = {noise.new_key() for _ in range(20)}
    assert len(keys) == 20 and all(len(k) == 32 for k in keys)


def test_documented_constants_match_the_scripted_literals() -> None:
    positive = torch.tensor([[0.0, 1e-12]])  # class 1 by a hair
    ids, mask = _batch([[1, 2, 3]])
    assert noise.keyed_margin(positive, ids, mask, KEY, 0.0).item() == noise.MIN_MARGIN
    label = noise.pseudo_logits(torch.tensor([2.5, -0.1]), "label")
    assert label[:, 1].tolist() == [noise.LABEL_MARGIN, -noise.LABEL_MARGIN]
    assert float(noise.MASK32 + 1) == noise.TWO32
