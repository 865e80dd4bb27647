from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codeaudit.data.loader import dataset_from_records
from codeaudit.errors import UsageError
from codeaudit.membership.features import (
    BLOCKS,
    FEATURES,
    FeatureSet,
    all_feature_sets,
    cache_key,
    extract_features,
    feature_set_usable,
    load_cached,
    parse_feature_sets,
    store_cached,
    usable_features,
)
from tests.conftest import planted_records


def make(logits, labels, unk=None) -> FeatureSet:  # type: ignore[no-untyped-def]
    logits = np.asarray(logits, dtype=np.float32)
    n = len(logits)
    return FeatureSet(
        ids=tuple(str(i) for i in range(n)),
        labels=np.asarray(labels),
        logits=logits,
        embeddings=np.zeros((n, 3), dtype=np.float32),
        unk_rate=np.zeros(n) if unk is None else np.asarray(unk, dtype=float),
        n_ids=np.full(n, 10),
        truncated=np.zeros(n, dtype=bool),
    )


def test_derived_signals_by_hand() -> None:
    f = make([[0.0, np.log(3.0)], [2.0, 2.0]], [1, 0])
    # row 0: p = [1/4, 3/4], label 1 -> loss = -log(3/4); row 1: p = [1/2, 1/2] -> log 2
    np.testing.assert_allclose(f.loss, [-np.log(0.75), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(f.confidence, [0.75, 0.5], rtol=1e-6)
    np.testing.assert_allclose(
        f.entropy, [-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)), np.log(2)], rtol=1e-6
    )
    # LiRA phi = log(p_y / (1 - p_y)) = log 3 and 0
    np.testing.assert_allclose(f.logit_scaled_confidence, [np.log(3.0), 0.0], atol=1e-6)
    # modified entropy row 0: -(1/4) log(3/4) - (1/4) log(3/4)
    np.testing.assert_allclose(f.modified_entropy[0], -0.5 * np.log(0.75), rtol=1e-5)
    np.testing.assert_array_equal(f.correct, [1.0, 1.0])  # argmax tie -> class 0 (label 0)


def test_fifteen_feature_combinations_and_parsing() -> None:
    sets = all_feature_sets()
    assert len(sets) == 15 and len(set(sets)) == 15
    assert parse_feature_sets("loss, logits+loss") == [("loss",), ("logits", "loss")]
    assert parse_feature_sets("loss+logits") == [("logits", "loss")]  # canonical order
    with pytest.raises(UsageError, match="unknown feature"):
        parse_feature_sets("logits+gradient")


def test_probability_block_is_named_but_not_among_the_fifteen() -> None:
    assert list(BLOCKS) == [*FEATURES, "probs-label"]
    assert not any("probs-label" in fs for fs in all_feature_sets())  # the default audit's sets
    assert parse_feature_sets("probs-label") == [("probs-label",)]
    assert parse_feature_sets("probs-label+loss, loss") == [("loss", "probs-label"), ("loss",)]
    with pytest.raises(UsageError, match="probs-label"):  # the message lists it
        parse_feature_sets("probabilities")
    # it needs what the loss and the confidence need: released scores, not a bare label
    assert feature_set_usable(("probs-label",), usable_features(object()))
    assert feature_set_usable(("probs-label", "loss"), frozenset({"loss", "confidence"}))
    assert not feature_set_usable(("probs-label",), frozenset({"label", "embedding"}))


def test_probability_block_is_the_probabilities_and_the_one_hot_label() -> None:
    import dataclasses

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 8, size=(50, 2)).astype(np.float32)  # saturated rows too
    labels = rng.integers(0, 2, 50)
    f = make(logits, labels)
    block = f.block("probs-label")
    assert block.shape == (50, 4) and block.dtype == np.float64
    probs, one_hot = block[:, :2], block[:, 2:]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs, f.probabilities)
    margin = logits[:, 1].astype(np.float64) - logits[:, 0]
    np.testing.assert_allclose(probs[:, 1], 1 / (1 + np.exp(-margin)), rtol=1e-5)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), labels)
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1.0)
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    np.testing.assert_array_equal(f.subset(np.array([4, 2])).block("probs-label"), block[[4, 2]])
    # a one-logit (sigmoid) model: both probabilities, as ART reads them
    z = np.array([2.0, -1.0, 0.0])
    g = dataclasses.replace(make(np.stack([np.zeros(3), z], 1), [1, 0, 1]), n_outputs=1)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(g.block("probs-label"), np.c_[1 - p, p, [[0, 1], [1, 0], [0, 1]]])


def test_streamed_extraction_equals_one_pass_and_caches(trained: dict, tmp_path: Path) -> None:
    _, model, _ = trained["bigru"]
    data = dataset_from_records(planted_records(23, seed=9), name="d", require_labels=True)
    whole = extract_features(model, data, chunk_size=1000)
    chunked = extract_features(model, data, chunk_size=5, batch_size=3)
    np.testing.assert_allclose(whole.logits, chunked.logits, atol=1e-5)
    np.testing.assert_allclose(whole.embeddings, chunked.embeddings, atol=1e-5)
    assert whole.ids == tuple(data.ids)
    key = cache_key("a" * 64, "b" * 64, 64)
    assert load_cached(tmp_path, key) is None
    store_cached(tmp_path, key, whole)
    again = load_cached(tmp_path, key)
    assert again is not None and again.ids == whole.ids
    np.testing.assert_array_equal(again.logits, whole.logits)
    (tmp_path / f"features-{key}.npz").write_bytes(b"garbage")
    assert load_cached(tmp_path, key) is None  # damaged entries are recomputed, not trusted
    assert cache_key("a" * 64, "b" * 64, 65) != key


def test_one_logit_model_features_are_its_sigmoid() -> None:
    """A sigmoid model (CodeXGLUE, EliBadCode) is read as logits [0, z]: its confidence and loss
    are those of sigmoid(z), and its logit feature is z alone."""
    import dataclasses

    z = np.array([2.0, -1.0, 0.5, -3.0])
    labels = np.array([1, 1, 0, 0])
    f = dataclasses.replace(make(np.stack([np.zeros(4), z], 1), labels), n_outputs=1)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(f.block("logits"), z[:, None], rtol=1e-6)
    np.testing.assert_allclose(f.confidence, np.maximum(p, 1 - p), rtol=1e-6)
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    np.testing.assert_allclose(f.loss, bce, rtol=1e-6)
    np.testing.assert_array_equal(f.predicted, (z > 0).astype(int))
    assert f.subset(np.array([0, 2])).n_outputs == 1
    assert FeatureSet.concat([f, f]).block("logits").shape == (8, 1)
    with pytest.raises(ValueError, match="one- and two-logit"):
        FeatureSet.concat([f, make([[0.0, 1.0]], [1])])


def test_cache_keeps_the_number_of_logits(tmp_path: Path) -> None:
    import dataclasses

    f = dataclasses.replace(make([[0.0, 1.5], [0.0, -0.5]], [1, 0]), n_outputs=1)
    store_cached(tmp_path, "k", f)
    again = load_cached(tmp_path, "k")
    assert again is not None and again.n_outputs == 1
    np.testing.assert_array_equal(again.block("logits"), f.block("logits"))
