"""NMID as an estimator and the hardened adapter: masking, determinism, persistence, refusals,
and the averaging attack (gains nothing against keyed noise, a lot against unkeyed noise)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from codeaudit.data.loader import load_dataset
from codeaudit.defense import load_hardened
from codeaudit.defense.evaluate import ADAPTIVE_DESCRIPTIONS, AdaptiveAttack
from codeaudit.errors import CheckpointError, HardenError, ModelError
from codeaudit.metrics import rank_auc
from codeaudit.models.checkpoint import load_model
from codeaudit.models.inference import infer
from codeaudit.models.nmid import EXPOSES, NMID, Exposure, HardenedModel

KEY = "00112233445566778899aabbccddeeff"


def test_registries_are_complete() -> None:
    assert set(EXPOSES) == set(Exposure)
    assert set(ADAPTIVE_DESCRIPTIONS) == set(AdaptiveAttack)
    assert all("label" in outputs for outputs in EXPOSES.values())
    assert not any({"logits", "embedding", "tokenizer"} & set(o) for o in EXPOSES.values())


def test_estimator_shape_and_validation() -> None:
    defense = NMID(2.0, "top1")
    assert not hasattr(defense, "key_")
    with pytest.raises(HardenError, match="not fitted"):
        defense.record(parent_sha256=None)
    assert defense.fit() is defense
    assert len(defense.key_) == 32 and defense.key_ != NMID(2.0).fit().key_
    with pytest.raises(HardenError, match="sigma"):
        NMID(-0.5).fit()
    with pytest.raises(HardenError, match="sigma"):
        NMID(float("nan")).fit()
    with pytest.raises(HardenError, match="unknown exposure"):
        NMID(1.0, "logits").fit()
    record = NMID(1.5, "probs", key=KEY).fit().record(parent_sha256="ab" * 32)
    again = NMID.from_record(record)
    assert (again.sigma_, again.expose_, again.key_) == (1.5, Exposure.PROBS, KEY)
    for broken in (
        {"kind": "dp"},
        {**record, "version": 99},
        {**record, "key": "x"},
        {**record, "sigma": -1},
        {**record, "keyed": False},
    ):
        with pytest.raises(CheckpointError):
            NMID.from_record(broken)
    with pytest.raises(HardenError, match="cannot be saved"):
        NMID(1.0, keyed=False).fit().record(parent_sha256=None)


@pytest.fixture(scope="module")
def bigru(trained: dict):  # type: ignore[no-untyped-def]
    path, _, _ = trained["bigru"]
    return path, load_model(path).model


@pytest.fixture(scope="module")
def samples(planted_files: dict[str, Path]) -> list:
    return list(load_dataset(str(planted_files["test"])).samples)


def test_hardened_model_masks_and_keeps_every_label(bigru, samples) -> None:  # type: ignore[no-untyped-def]
    _, base = bigru
    encodings = base.encode(samples)
    clean = infer(base, encodings).logits
    for expose in Exposure:
        hardened = NMID(3.0, expose.value, key=KEY).fit().transform(base)
        out = infer(hardened, encodings, embeddings=True)
        assert np.array_equal(out.logits.argmax(1), clean.argmax(1))
        assert out.embeddings is not None and out.embeddings.shape == (len(samples), 0)
        released = hardened.query(samples)
        assert np.array_equal(released.label, clean.argmax(1))
        assert (released.confidence is not None) == (expose is Exposure.TOP1)
        assert (released.probs is not None) == (expose is Exposure.PROBS)
        if expose is not Exposure.LABEL:
            # the noise moved the scores: no released probability equals the clean one
            p = torch.softmax(torch.from_numpy(clean), 1).numpy().max(1)
            shown = (
                released.confidence if released.confidence is not None else released.probs.max(1)
            )
            assert np.abs(shown - p).max() > 1e-3
    hardened = NMID(3.0, key=KEY).fit().transform(base)
    for refused in (
        hardened.input_embeddings,
        hardened.head_parameters,
        lambda: hardened.forward_embeds(torch.zeros(1, 2, 16), torch.ones(1, 2)),
    ):
        with pytest.raises(ModelError, match="exposes no"):
            refused()
    with pytest.raises(HardenError, match="already hardened"):
        NMID(1.0).fit().transform(hardened)


def test_same_question_same_answer(bigru, samples) -> None:  # type: ignore[no-untyped-def]
    _, base = bigru
    hardened = NMID(4.0, "probs", key=KEY).fit().transform(base)
    first = hardened.query(samples)
    again = hardened.query(samples)
    alone = hardened.query(samples[3:4])
    shuffled = hardened.query(samples[::-1], batch_size=7)
    assert np.array_equal(first.probs, again.probs)
    assert np.allclose(alone.probs[0], first.probs[3], atol=1e-6)
    assert np.allclose(shuffled.probs[::-1], first.probs, atol=1e-6)
    # another key gives other noise
    other = NMID(4.0, "probs", key="f" * 32).fit().transform(base).query(samples)
    assert np.abs(other.probs - first.probs).max() > 1e-3


def test_saved_hardened_checkpoint_loads_as_the_hardened_model(
    bigru, samples, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from codeaudit.defense.export import save_hardened
    from codeaudit.io import sha256_file

    path, base = bigru
    parent = sha256_file(path)
    hardened = NMID(2.5, "top1", key=KEY).fit().transform(base, parent_sha256=parent)
    out = save_hardened(hardened, tmp_path / "h.pt", metadata={"x": 1}, force=False)
    payload = torch.load(out, weights_only=True)
    assert payload["defense"]["kind"] == "nmid" and payload["defense"]["key"] == KEY
    assert payload["defense"]["parent_sha256"] == parent
    loaded = load_model(out)
    assert isinstance(loaded.model, HardenedModel) and loaded.defense is not None
    assert loaded.model.sigma == 2.5 and loaded.model.expose == "top1"
    assert np.array_equal(
        loaded.model.query(samples).confidence, hardened.query(samples).confidence
    )
    assert isinstance(load_hardened(str(out)), HardenedModel)
    with pytest.raises(CheckpointError, match="not a hardened model"):
        load_hardened(str(path))
    # a hardened model can never be written without its defence
    from codeaudit.models.checkpoint import save_checkpoint

    again = save_checkpoint(loaded.model, tmp_path / "again.pt")
    assert torch.load(again, weights_only=True)["defense"]["key"] == KEY
    # a defence this version does not understand is refused, never silently dropped
    payload["defense"]["kind"] = "future-defence"
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    (tmp_path / "future.pt").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_model(tmp_path / "future.pt")


def _leaky(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """All predictions correct; members have a larger margin (4 vs 2): a pure score leak."""
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(n), np.zeros(n)].astype(np.int64)
    margin = np.where(member == 1, 4.0, 2.0) + rng.normal(0, 0.3, 2 * n)
    logits = torch.from_numpy(np.stack([np.zeros(2 * n), margin], 1).astype(np.float32))
    ids = torch.from_numpy(rng.integers(0, 40000, (2 * n, 20)))
    return logits, ids, torch.ones_like(ids), member


@pytest.mark.parametrize("keyed", [True, False])
def test_averaging_repeated_queries(keyed: bool) -> None:
    """Keyed: 32 answers are one answer, averaging gains exactly nothing. Unkeyed (the same
    noise drawn fresh per query): averaging recovers the leak. Same sigma, same attack."""
    logits, ids, mask, member = _leaky(300, 0)
    defense = NMID(4.0, "top1", key=KEY, keyed=keyed, seed=5).fit()
    answers = np.stack([defense.margin(logits, ids, mask).numpy() for _ in range(32)])
    single = rank_auc(member, answers[0])
    averaged = rank_auc(member, answers.mean(axis=0))
    clean = rank_auc(member, logits[:, 1].numpy())
    assert clean > 0.99 and single < 0.75  # the noise hides most of the leak from one query
    if keyed:
        assert np.array_equal(answers[0], answers[-1])
        assert averaged == single
    else:
        assert averaged > single + 0.15 and averaged > 0.75


def test_usable_features_follow_the_exposure(bigru) -> None:  # type: ignore[no-untyped-def]
    from codeaudit.membership.features import usable_features

    _, base = bigru
    assert usable_features(base) == {
        "label", "loss", "confidence", "logits", "embedding", "tokenizer"
    }  # fmt: skip
    scores = NMID(1.0, "top1", key=KEY).fit().transform(base)
    assert usable_features(scores) == {"label", "loss", "confidence", "logits"}
    assert usable_features(NMID(1.0, "probs", key=KEY).fit().transform(base)) == usable_features(
        scores
    )
    assert usable_features(NMID(1.0, "label", key=KEY).fit().transform(base)) == {"label"}


def test_one_logit_model_is_noised_on_its_one_logit() -> None:
    """NMID on a sigmoid model adds sigma * e to its one logit (not sigma * (e1 - e0) to a
    margin against a constant), keeps every label, and records a scheme of its own."""
    from codeaudit.models import noise as noise_module

    torch.manual_seed(0)
    z = torch.randn(200, dtype=torch.float64) * 3
    logits = torch.stack([torch.zeros_like(z), z], 1)
    ids = torch.randint(3, 50, (200, 12))
    mask = torch.ones_like(ids)
    key = "00112233445566778899aabbccddeeff"
    single = NMID(2.0, "probs", key=key, outputs=1).fit()
    double = NMID(2.0, "probs", key=key, outputs=2).fit()
    normals = noise_module.keyed_normals(
        noise_module.keyed_hash(ids, mask, single.head_.key), single.head_.key, 2
    )
    raw = z + 2.0 * normals[:, 1]
    expected = torch.where(z > 0, raw.abs().clamp(min=1e-4), -raw.abs())
    torch.testing.assert_close(single.margin(logits, ids, mask), expected)
    assert not torch.allclose(double.margin(logits, ids, mask), expected)
    assert torch.equal(single.release(logits, ids, mask)["label"], (z > 0).long())
    record = single.record(parent_sha256=None)
    assert record["noise"].startswith("gaussian-box-muller/single-logit")
    assert NMID.from_record(record).outputs_ == 1
    assert NMID.from_record(double.record(parent_sha256=None)).outputs_ == 2
    assert single.with_sigma(1.0).outputs_ == 1


def test_defense_and_weights_must_agree_on_the_logits(bigru) -> None:  # type: ignore[no-untyped-def]
    from codeaudit.errors import CheckpointError

    _, model = bigru
    with pytest.raises(CheckpointError, match="noises 1 logit"):
        NMID(1.0, outputs=1).fit().transform(model)
    assert NMID(1.0).fit(model).outputs_ == 2
