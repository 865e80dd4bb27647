"""Each attack on a planted leak (it must find it) and on a case without one (AUC near 0.5)."""

from __future__ import annotations

import numpy as np
import pytest

from codeaudit.membership.attacks import ATTACK_CLASSES, RMIA, LiRA, ThresholdAttack
from codeaudit.membership.attacks.label_only import CorrectnessAttack
from codeaudit.membership.attacks.shadow import ShadowAttack
from codeaudit.membership.evaluate import evaluate_trained, evaluate_unsupervised, make_folds
from codeaudit.membership.features import FeatureSet
from codeaudit.membership.references import ReferenceOutputs, ShadowOutputs, balanced_in_mask
from codeaudit.metrics import rank_auc

N = 400


def features(rng: np.random.Generator, member: np.ndarray, leak: float) -> FeatureSet:
    """Members get a larger true-class logit margin by ``leak`` (0: no leak)."""
    labels = rng.integers(0, 2, len(member))
    margin = rng.normal(1.0, 1.0, len(member)) + leak * member
    logits = np.zeros((len(member), 2), dtype=np.float32)
    logits[np.arange(len(member)), labels] = margin
    emb = rng.normal(size=(len(member), 8)).astype(np.float32)
    emb[:, 0] += leak * member
    return FeatureSet(
        ids=tuple(str(i) for i in range(len(member))),
        labels=labels,
        logits=logits,
        embeddings=emb,
        unk_rate=rng.uniform(0, 0.1, len(member)) - 0.02 * leak * member,
        n_ids=np.full(len(member), 50),
        truncated=np.zeros(len(member), dtype=bool),
    )


@pytest.fixture
def membership() -> np.ndarray:
    return np.r_[np.ones(N // 2), np.zeros(N // 2)].astype(np.int64)


def test_registry_lists_every_family() -> None:
    families = {cls.family for cls in ATTACK_CLASSES.values()}
    assert families == {"threshold", "trained", "shadow", "reference", "label-only", "blind"}


@pytest.mark.parametrize("signal", ["loss", "confidence", "entropy", "modified-entropy"])
def test_threshold_attacks(signal: str, membership: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    folds = make_folds(membership, 3, 0)
    leaky = evaluate_unsupervised(
        ThresholdAttack(signal),
        features(rng, membership, 3.0),
        membership,
        folds,
        n_boot=50,
        seed=0,
    )
    clean = evaluate_unsupervised(
        ThresholdAttack(signal),
        features(rng, membership, 0.0),
        membership,
        folds,
        n_boot=50,
        seed=0,
    )
    assert leaky.score.auc > 0.8
    assert abs(clean.score.auc - 0.5) < 0.08
    assert clean.score.auc_ci[0] < 0.5 < clean.score.auc_ci[1]


def test_trained_attacks_find_leaks_and_never_score_training_folds(
    membership: np.ndarray,
) -> None:
    rng = np.random.default_rng(1)
    folds = make_folds(membership, 3, 0)
    leaky = evaluate_trained(
        ["logreg", "gb"],
        [("embedding",), ("logits", "loss")],
        features(rng, membership, 2.0),
        membership,
        folds,
        n_boot=50,
        seed=0,
    )
    assert all(r.score.auc > 0.75 for r in leaky), [(r.attack, r.score.auc) for r in leaky]
    # Random membership, random features: a random forest scored on its own training folds would
    # reach AUC near 1.0; scored honestly on held-out folds it stays near 0.5.
    noise = features(rng, membership, 0.0)
    shuffled = rng.permutation(membership)
    honest = evaluate_trained(
        ["rf", "mlp"],
        [("embedding", "logits", "loss", "confidence")],
        noise,
        shuffled,
        make_folds(shuffled, 3, 0),
        n_boot=50,
        seed=0,
    )
    for result in honest:
        assert abs(result.score.auc - 0.5) < 0.1, (result.attack, result.score.auc)


def test_trained_attack_with_a_signal_combines_what_each_input_knows(
    membership: np.ndarray,
) -> None:
    """The reference-calibrated trained attack: a signal leaking one half of the members and
    outputs leaking the other half; together they beat each alone."""
    rng = np.random.default_rng(5)
    folds = make_folds(membership, 3, 0)
    members = np.flatnonzero(membership == 1)
    first, second = members[: len(members) // 2], members[len(members) // 2 :]
    outputs = features(rng, np.zeros_like(membership), 0.0)
    outputs.embeddings[second, 0] += 4.0  # the embedding gives away the second half
    signal = rng.normal(size=len(membership))
    signal[first] += 4.0  # the signal (e.g. a LiRA score) gives away the first half

    def auc(feature_set: tuple[str, ...]) -> float:
        (result,) = evaluate_trained(
            ["logreg"],
            [feature_set],
            outputs,
            membership,
            folds,
            n_boot=20,
            seed=0,
            signals={"lira-online": signal},
            family="reference",
        )
        assert result.family == "reference"
        assert result.features == feature_set
        return result.score.auc

    alone_signal, alone_embedding = auc(("lira-online",)), auc(("embedding",))
    combined = auc(("embedding", "lira-online"))
    assert combined > max(alone_signal, alone_embedding) + 0.1
    with pytest.raises(ValueError, match="unknown attack inputs"):
        evaluate_trained(["logreg"], [("rmia",)], outputs, membership, folds, n_boot=5, seed=0)
    with pytest.raises(ValueError, match="one value per sample"):
        evaluate_trained(
            ["logreg"],
            [("x",)],
            outputs,
            membership,
            folds,
            n_boot=5,
            seed=0,
            signals={"x": signal[:10]},
        )


def test_correctness_attack_equals_the_generalisation_gap(membership: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    f = features(rng, membership, 0.0)
    # members always right; non-members right half the time
    logits = np.zeros((N, 2), dtype=np.float32)
    right = np.r_[np.ones(N // 2), np.arange(N // 2) % 2].astype(bool)
    predicted = np.where(right, f.labels, 1 - f.labels)
    logits[np.arange(N), predicted] = 1.0
    f = FeatureSet(f.ids, f.labels, logits, f.embeddings, f.unk_rate, f.n_ids, f.truncated)
    scores = CorrectnessAttack().score(f)
    assert rank_auc(membership, scores) == pytest.approx(0.5 + (1.0 - 0.5) / 2)


def _references(rng: np.random.Generator, member: np.ndarray, leak: float, k: int = 8):
    """Simulated reference models: IN models see a higher phi on a sample, by ``leak``."""
    mask = balanced_in_mask(len(member), k, rng)
    difficulty = rng.normal(0.0, 1.0, len(member))
    outs = []
    for row in mask:
        phi = difficulty + leak * row + rng.normal(0, 0.3, len(member))
        logits = np.zeros((len(member), 2), dtype=np.float32)
        labels = np.zeros(len(member), dtype=np.int64)
        logits[:, 0] = phi
        outs.append(
            FeatureSet(
                tuple(map(str, range(len(member)))),
                labels,
                logits,
                np.zeros((len(member), 2), np.float32),
                np.zeros(len(member)),
                np.zeros(len(member), int),
                np.zeros(len(member), bool),
            )
        )
    target_phi = difficulty + leak * member + rng.normal(0, 0.3, len(member))
    logits = np.zeros((len(member), 2), dtype=np.float32)
    logits[:, 0] = target_phi
    target = FeatureSet(
        outs[0].ids,
        outs[0].labels,
        logits,
        outs[0].embeddings,
        outs[0].unk_rate,
        outs[0].n_ids,
        outs[0].truncated,
    )
    return ReferenceOutputs(features=tuple(outs), in_mask=mask), target


@pytest.mark.parametrize(
    "make_attack",
    [
        lambda refs: LiRA(refs, online=True),
        lambda refs: LiRA(refs, online=False),
        lambda refs: RMIA(refs),
    ],
)
def test_reference_attacks(make_attack, membership: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    refs, target = _references(rng, membership, 1.5)
    assert rank_auc(membership, make_attack(refs).score(target)) > 0.8
    refs, target = _references(rng, membership, 0.0)
    assert abs(rank_auc(membership, make_attack(refs).score(target)) - 0.5) < 0.08


def test_lira_beats_a_global_threshold_when_samples_differ_in_difficulty(
    membership: np.ndarray,
) -> None:
    """Per-sample calibration is LiRA's point: the loss threshold sees difficulty as noise."""
    rng = np.random.default_rng(4)
    refs, target = _references(rng, membership, 1.0)
    lira = rank_auc(membership, LiRA(refs).score(target))
    threshold = rank_auc(membership, target.logit_scaled_confidence)
    assert lira > threshold + 0.1


def test_balanced_in_mask() -> None:
    mask = balanced_in_mask(50, 6, np.random.default_rng(0))
    assert (mask.sum(axis=0) == 3).all()


def test_shadow_attack_learns_from_shadows_only(membership: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    shadow_membership = np.r_[np.ones(300), np.zeros(300)].astype(np.int64)
    shadows = ShadowOutputs(features(rng, shadow_membership, 2.5), shadow_membership, 0.0)
    attack = ShadowAttack(shadows).fit(features(rng, membership, 2.5), np.zeros(N))
    target = features(rng, membership, 2.5)
    assert rank_auc(membership, attack.score(target)) > 0.8


def test_ctrl_c_inside_the_mlp_attack_stops_the_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    # scikit-learn's MLP catches KeyboardInterrupt in its training loop and returns a half-trained
    # model with a warning; the audit must stop instead (exit 130), not report on it.
    from sklearn.neural_network import MLPClassifier

    from codeaudit.membership.attacks.trained import fit_classifier

    def interrupted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 3)), np.arange(80) % 2
    assert fit_classifier("mlp", 0, x, y).predict_proba(x).shape == (80, 2)
    monkeypatch.setattr(MLPClassifier, "_update_no_improvement_count", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_classifier("mlp", 0, x, y)
