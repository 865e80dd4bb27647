"""The attacks issue 19 adds beside the peers' (ART): k-NN, SVM and decision-tree attack models,
the cross-fitted selection of the trained attack model, the label-free threshold attacks and the
shadow attack's choice of attack model. Each finds the leak of a tiny memorising model and stays
near 0.5 on a control whose members and non-members the model never trained on."""

from __future__ import annotations

import numpy as np
import pytest

from codeaudit.membership.attacks.shadow import SHADOW_CANDIDATES, ShadowAttack
from codeaudit.membership.attacks.threshold import LABEL_FREE, ThresholdAttack
from codeaudit.membership.attacks.trained import (
    DISTANCE_CLASSIFIERS,
    DISTANCE_FEATURE_SETS,
    fit_classifier,
)
from codeaudit.membership.evaluate import (
    SELECTED,
    attack_pairs,
    evaluate_trained,
    evaluate_unsupervised,
    make_folds,
)
from codeaudit.membership.features import FeatureSet
from codeaudit.membership.references import ShadowOutputs
from codeaudit.metrics import rank_auc

DIM = 50  # points far apart: a memoriser is sure of its members only


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs with labels that are mostly noise: a model can only memorise them."""
    x = rng.normal(size=(n, DIM))
    y = ((x[:, 0] + rng.normal(0, 2.0, n)) > 0).astype(np.int64)
    return x, y


def _memoriser(x: np.ndarray, y: np.ndarray, seed: int):  # type: ignore[no-untyped-def]
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(
        hidden_layer_sizes=(64,), alpha=1e-2, max_iter=1000, random_state=seed
    ).fit(x, y)


def _outputs(model, x: np.ndarray, y: np.ndarray) -> FeatureSet:  # type: ignore[no-untyped-def]
    """The tiny model's outputs as the audit reads them: logits (log-probabilities) and the
    hidden layer as the embedding."""
    proba = np.clip(model.predict_proba(x), 1e-12, 1.0)
    hidden = np.maximum(x @ model.coefs_[0] + model.intercepts_[0], 0.0)
    return FeatureSet(
        ids=tuple(str(i) for i in range(len(x))),
        labels=y,
        logits=np.log(proba).astype(np.float32),
        embeddings=hidden.astype(np.float32),
        unk_rate=np.zeros(len(x)),
        n_ids=np.full(len(x), 20),
        truncated=np.zeros(len(x), dtype=bool),
    )


@pytest.fixture(scope="module")
def target() -> dict[str, object]:
    """A memoriser trained on 150 members; 150 non-members from the same distribution; and a
    control: 150 + 150 other samples from that distribution, which the model never saw."""
    rng = np.random.default_rng(0)
    x, y = _data(rng, 600)
    model = _memoriser(x[:150], y[:150], 0)
    membership = np.r_[np.ones(150), np.zeros(150)].astype(np.int64)
    return {
        "leaky": _outputs(model, x[:300], y[:300]),
        "control": _outputs(model, x[300:], y[300:]),
        "membership": membership,
        "folds": make_folds(membership, 3, 0),
        "model": model,
        "rng": rng,
    }


def test_the_tiny_model_memorises(target: dict) -> None:
    leaky, membership = target["leaky"], target["membership"]
    assert leaky.correct[membership == 1].mean() > 0.95
    assert leaky.correct[membership == 0].mean() < 0.8


@pytest.mark.parametrize("classifier", ["knn", "svm", "dt"])
def test_new_attack_models_find_the_leak_and_not_a_control(classifier: str, target: dict) -> None:
    kw = {"n_boot": 20, "seed": 0}
    sets = [("logits", "loss"), ("embedding", "loss")]
    m, folds = target["membership"], target["folds"]
    leaky = evaluate_trained([classifier], sets, target["leaky"], m, folds, **kw)
    control = evaluate_trained([classifier], sets, target["control"], m, folds, **kw)
    for found in leaky:
        assert found.attack == f"trained-{classifier}"
        assert found.score.auc > 0.65, (found.features, found.score.auc)
    for found in control:
        assert abs(found.score.auc - 0.5) < 0.1, (found.features, found.score.auc)


@pytest.mark.parametrize("classifier", DISTANCE_CLASSIFIERS)
def test_distance_models_find_the_leak_in_the_probabilities_and_not_a_control(
    classifier: str, target: dict
) -> None:
    """k-NN and the SVM on the probabilities and the one-hot label (ART's input)."""
    kw = {"n_boot": 20, "seed": 0}
    m, folds = target["membership"], target["folds"]
    (leaky,) = evaluate_trained([classifier], [], target["leaky"], m, folds, **kw,
                                distance_sets=DISTANCE_FEATURE_SETS)  # fmt: skip
    (control,) = evaluate_trained([classifier], [], target["control"], m, folds, **kw,
                                  distance_sets=DISTANCE_FEATURE_SETS)  # fmt: skip
    assert (leaky.attack, leaky.features) == (f"trained-{classifier}", ("probs-label",))
    assert leaky.score.auc > 0.75, leaky.score.auc
    assert abs(control.score.auc - 0.5) < 0.1, control.score.auc


def _long_tailed(rng: np.random.Generator, n: int) -> tuple[FeatureSet, np.ndarray]:
    """Released probabilities of a memoriser: members' losses near 0, non-members' mostly small
    with a long tail (the confidently wrong), read as log-probabilities."""
    membership = np.r_[np.ones(n // 2), np.zeros(n // 2)].astype(np.int64)
    tail = np.where(rng.random(n) < 0.7, rng.exponential(0.3, n), rng.exponential(8.0, n))
    loss = np.where(membership == 1, rng.exponential(0.02, n), tail)
    labels = rng.integers(0, 2, n)
    z = np.zeros((n, 2))
    z[np.arange(n), labels] = -np.log(np.expm1(loss))  # loss = log(1 + exp(-(z_y - z_other)))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    f = FeatureSet(
        ids=tuple(str(i) for i in range(n)),
        labels=labels,
        logits=np.log(np.clip(p, 1e-38, 1.0)).astype(np.float32),
        embeddings=np.zeros((n, 1), dtype=np.float32),
        unk_rate=np.zeros(n),
        n_ids=np.full(n, 20),
        truncated=np.zeros(n, dtype=bool),
    )
    return f, membership


@pytest.mark.parametrize("classifier", DISTANCE_CLASSIFIERS)
def test_distance_models_read_probabilities_better_than_log_probabilities(
    classifier: str,
) -> None:
    """Why the block exists: standardised log-probabilities keep their long tail, which sets a
    kernel's (and the neighbours') scale, and the bulk of the ranking is lost; bounded
    probabilities keep it."""
    f, m = _long_tailed(np.random.default_rng(0), 300)
    found = evaluate_trained([classifier], [("logits",)], f, m, make_folds(m, 3, 0), n_boot=10,
                             seed=0, distance_sets=DISTANCE_FEATURE_SETS)  # fmt: skip
    on_logs, on_probs = (ev.score.auc for ev in found)
    assert on_probs > 0.9 and on_probs > on_logs + 0.03, (on_logs, on_probs)


def test_probability_sets_go_to_the_distance_models_alone() -> None:
    sets = [("loss",), ("logits", "loss")]
    pairs = attack_pairs(["logreg", "knn", "svm", "gb"], sets, DISTANCE_FEATURE_SETS)
    assert pairs[:8] == [(c, fs) for fs in sets for c in ("logreg", "knn", "svm", "gb")]
    assert pairs[8:] == [("knn", ("probs-label",)), ("svm", ("probs-label",))]
    # the default audit (logistic regression alone) gets no further pair
    assert attack_pairs(["logreg"], sets, DISTANCE_FEATURE_SETS) == attack_pairs(["logreg"], sets)
    # a set already named for every model is not repeated
    named = [("probs-label",)]
    assert attack_pairs(["svm"], named, DISTANCE_FEATURE_SETS) == [("svm", ("probs-label",))]
    from codeaudit.membership.check import distance_sets
    from codeaudit.membership.features import usable_features

    full = usable_features(object())
    assert distance_sets(None, full) == distance_sets("all", full) == [("probs-label",)]
    assert distance_sets("loss,logits", full) == []  # named sets: every model reads those
    assert distance_sets(None, frozenset({"label", "embedding"})) == []  # no scores released


def test_selection_can_pick_the_probability_block(target: dict) -> None:
    """The leak is in the outputs only (the embedding is noise here): the selection, which
    sees the distance models' probability pairs beside the others, picks the SVM on them."""
    import dataclasses

    rng = np.random.default_rng(5)
    leaky = dataclasses.replace(
        target["leaky"], embeddings=rng.normal(size=(300, 4)).astype(np.float32)
    )
    m, folds = target["membership"], target["folds"]
    found = evaluate_trained(["logreg", "svm"], [("embedding",)], leaky, m, folds, n_boot=10,
                             seed=0, select=True, distance_sets=DISTANCE_FEATURE_SETS)  # fmt: skip
    assert [(f.attack, f.features) for f in found] == [
        ("trained-logreg", ("embedding",)),
        ("trained-svm", ("embedding",)),
        ("trained-svm", ("probs-label",)),
        (SELECTED, ("probs-label",)),
    ]
    assert found[-1].score.auc > 0.75 > max(f.score.auc for f in found[:2])


def test_svm_scores_keep_its_decision_rule() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 3)), rng.integers(0, 2, 80)
    model = fit_classifier("svm", 0, x, y)
    from codeaudit.membership.attacks.trained import classifier_scores

    scores = classifier_scores(model, x)
    assert ((scores >= 0.5) == (model.predict(x) == 1)).all()
    assert ((scores > 0) & (scores < 1)).all()


def test_knn_never_asks_for_more_neighbours_than_samples() -> None:
    x, y = np.arange(8.0)[:, None], np.r_[np.zeros(4), np.ones(4)]
    model = fit_classifier("knn", 0, x, y)
    assert model.n_neighbors == 8 and model.predict_proba(x).shape == (8, 2)


@pytest.mark.parametrize("signal", sorted(LABEL_FREE))
def test_label_free_attacks_find_the_leak_without_labels(signal: str, target: dict) -> None:
    m, folds = target["membership"], target["folds"]
    attack = ThresholdAttack(signal)
    assert attack.label_free
    leaky = evaluate_unsupervised(attack, target["leaky"], m, folds, n_boot=20, seed=0)
    control = evaluate_unsupervised(attack, target["control"], m, folds, n_boot=20, seed=0)
    assert leaky.score.auc > 0.75
    assert abs(control.score.auc - 0.5) < 0.1
    # no true label is read: other labels, the same scores
    f = target["leaky"]
    relabelled = FeatureSet(
        f.ids, 1 - f.labels, f.logits, f.embeddings, f.unk_rate, f.n_ids, f.truncated
    )
    np.testing.assert_array_equal(attack.score(relabelled), attack.score(f))


def test_label_based_thresholds_are_not_label_free() -> None:
    assert not {"loss", "modified-entropy", "unknown-tokens"} & LABEL_FREE
    assert not ThresholdAttack("loss").label_free


def test_label_free_margin_keeps_the_order_where_confidence_rounds_to_one() -> None:
    logits = np.array([[0.0, 40.0], [0.0, 50.0], [3.0, 0.0]], dtype=np.float32)
    f = FeatureSet(
        ("a", "b", "c"),
        np.array([1, 0, 0]),
        logits,
        np.zeros((3, 2), np.float32),
        np.zeros(3),
        np.zeros(3, int),
        np.zeros(3, bool),
    )
    confidence = ThresholdAttack("confidence").score(f)
    assert confidence[0] == confidence[1]  # both round to 1.0
    margin = ThresholdAttack("label-free-margin").score(f)
    loss = ThresholdAttack("label-free-loss").score(f)
    assert margin[1] > margin[0] > margin[2] and loss[1] > loss[0] > loss[2]


def _noise(rng: np.random.Generator, n: int) -> FeatureSet:
    return FeatureSet(
        ids=tuple(str(i) for i in range(n)),
        labels=rng.integers(0, 2, n),
        logits=rng.normal(size=(n, 2)).astype(np.float32),
        embeddings=rng.normal(size=(n, 6)).astype(np.float32),
        unk_rate=np.zeros(n),
        n_ids=np.full(n, 20),
        truncated=np.zeros(n, dtype=bool),
    )


NOISE_SETS = [
    ("embedding",),
    ("logits",),
    ("loss",),
    ("confidence",),
    ("logits", "loss"),
    ("embedding", "confidence"),
]


def test_selection_on_noise_stays_near_half_where_the_maximum_does_not() -> None:
    """Pure-noise outputs: every attack model's true AUC is 0.5. The largest out-of-fold AUC
    over the 12 models is above 0.5 (it is picked on the folds it is measured on); the
    cross-fitted selection, chosen inside the training folds, is not."""
    selected, maxima = [], []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        membership = np.r_[np.ones(80), np.zeros(80)].astype(np.int64)
        found = evaluate_trained(
            ["logreg", "dt"],
            NOISE_SETS,
            _noise(rng, 160),
            membership,
            make_folds(membership, 3, seed),
            n_boot=10,
            seed=seed,
            select=True,
        )
        (chosen,) = [f for f in found if f.attack == SELECTED]
        selected.append(chosen.score.auc)
        maxima.append(max(f.score.auc for f in found if f.attack != SELECTED))
    assert abs(np.mean(selected) - 0.5) < 0.04, selected
    assert np.mean(maxima) > 0.56, maxima
    assert np.mean(maxima) > np.mean(selected) + 0.06


def test_selection_never_reads_the_fold_it_scores(
    target: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the selection sees: only each outer fold's training rows."""
    import codeaudit.membership.evaluate as evaluate

    seen: list[np.ndarray] = []
    original = evaluate.select_pairs

    def spy(pairs, features, membership, train_idx, signals, **kw):  # type: ignore[no-untyped-def]
        seen.append(np.array(train_idx))
        poisoned = membership.copy()  # labels outside the training rows must not matter
        outside = np.setdiff1d(np.arange(len(membership)), train_idx)
        poisoned[outside] = 1 - poisoned[outside]
        return original(pairs, features, poisoned, train_idx, signals, **kw)

    monkeypatch.setattr(evaluate, "select_pairs", spy)
    m, folds = target["membership"], target["folds"]
    sets = [("logits",), ("embedding",), ("logits", "loss")]
    found = evaluate_trained(
        ["logreg", "dt"], sets, target["leaky"], m, folds, n_boot=10, seed=0, select=True
    )
    assert len(seen) == len(folds)
    for train_idx, (tr, te) in zip(seen, folds, strict=True):
        np.testing.assert_array_equal(np.sort(train_idx), np.sort(tr))
        assert not set(train_idx) & set(te)
    (chosen,) = [f for f in found if f.attack == SELECTED]
    assert chosen.score.auc > 0.75  # it still finds the leak
    assert chosen.features in sets


VOTE_SETS = [("logits",), ("loss",), ("logits", "loss"), ("loss", "confidence"), ("embedding",)]


def test_selected_attack_is_a_soft_vote_of_pairs_chosen_inside_the_training_part(
    target: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each fold's selected scores are the mean P(member) of several pairs' held-out scores
    (so they differ from every single pair's), and the voters depend on the training rows'
    labels alone: flipping every label outside them changes nothing."""
    import codeaudit.membership.evaluate as evaluate

    voters: list[list] = []
    original = evaluate.select_pairs

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        voters.append(original(*args, **kw))
        return voters[-1]

    monkeypatch.setattr(evaluate, "select_pairs", spy)
    m, folds, leaky = target["membership"], target["folds"], target["leaky"]
    found = evaluate_trained(
        ["logreg", "mlp"], VOTE_SETS, leaky, m, folds, n_boot=10, seed=0, select=True
    )
    oof = {(f.attack.removeprefix("trained-"), f.features): f.scores for f in found[:-1]}
    chosen = found[-1]
    assert chosen.attack == SELECTED and chosen.score.auc > 0.75
    assert len(voters) == len(folds)
    for vote, (tr, te) in zip(voters, folds, strict=True):
        assert 1 < len(vote) <= evaluate.ENSEMBLE_SIZE, vote
        assert ("logreg", ("embedding",)) not in vote  # a weak pair does not vote
        np.testing.assert_allclose(chosen.scores[te], np.mean([oof[p][te] for p in vote], 0))
        for pair, scores in oof.items():
            assert not np.allclose(chosen.scores[te], scores[te]), pair
        outside = np.setdiff1d(np.arange(len(m)), tr)
        poisoned = m.copy()
        poisoned[outside] = 1 - poisoned[outside]
        kw = {"inner_folds": 3, "pca_components": 16, "seed": 0}
        pairs = attack_pairs(["logreg", "mlp"], VOTE_SETS)
        assert original(pairs, leaky, poisoned, tr, {}, **kw) == vote
    assert chosen.features == max(
        {v[0][1] for v in voters}, key=lambda fs: sum(v[0][1] == fs for v in voters)
    )


def test_one_pair_needs_no_selection(target: dict) -> None:
    m, folds = target["membership"], target["folds"]
    found = evaluate_trained(
        ["logreg"], [("loss",)], target["leaky"], m, folds, n_boot=5, seed=0, select=True
    )
    assert [f.attack for f in found] == ["trained-logreg"]


def test_ranking_counts_the_selection_not_the_maximum() -> None:
    from codeaudit.membership.judge import attack_row, ranked

    rng = np.random.default_rng(7)
    membership = np.r_[np.ones(60), np.zeros(60)].astype(np.int64)
    found = evaluate_trained(
        ["logreg", "dt"],
        NOISE_SETS,
        _noise(rng, 120),
        membership,
        make_folds(membership, 3, 0),
        n_boot=10,
        seed=0,
        select=True,
    )
    threshold = evaluate_unsupervised(
        ThresholdAttack("loss"),
        _noise(rng, 120),
        membership,
        make_folds(membership, 3, 0),
        n_boot=10,
        seed=0,
    )
    rows = [attack_row(f) for f in [*found, threshold]]
    kept = ranked(rows)
    assert {r.attack for r in kept} == {SELECTED, "threshold-loss"}
    # without a selection every row competes, as before
    plain = [r for r in rows if r.attack != SELECTED]
    assert ranked(plain) == plain


def _shadows(rng: np.random.Generator, k: int, n: int) -> ShadowOutputs:
    """k tiny memorisers, each trained on a random half of n population samples, scored on
    all n (their in half, then their out half)."""
    x, y = _data(rng, n)
    parts, labels = [], []
    for index in range(k):
        order = rng.permutation(n)
        inside, outside = order[: n // 2], order[n // 2 :]
        model = _memoriser(x[inside], y[inside], 10 + index)
        rows = np.r_[inside, outside]
        parts.append(_outputs(model, x[rows], y[rows]))
        labels.append(np.r_[np.ones(len(inside)), np.zeros(len(outside))])
    return ShadowOutputs(
        FeatureSet.concat(parts),
        np.concatenate(labels).astype(np.int64),
        0.0,
        np.repeat(np.arange(k), n),
    )


def test_shadow_attack_finds_the_leak_from_shadows_alone(target: dict) -> None:
    from threadpoolctl import threadpool_limits

    shadows = _shadows(np.random.default_rng(3), 2, 300)
    m = target["membership"]
    with threadpool_limits(limits=1):  # gradient boosting's OpenMP pool on a busy machine
        attack = ShadowAttack(shadows).fit(target["leaky"], np.zeros(len(m)))
    # chosen on the shadows, one left out at a time: the best held-out (TPR at 1% FPR, AUC)
    assert attack.choice_ == max(SHADOW_CANDIDATES, key=lambda c: attack.held_out_[c])
    assert attack.name == f"shadow-{attack.choice_[0]}"
    assert rank_auc(m, attack.score(target["leaky"])) > 0.75
    assert abs(rank_auc(m, attack.score(target["control"])) - 0.5) < 0.1
    # the target's membership plays no part
    again = ShadowAttack(shadows, candidates=(attack.choice_,)).fit(target["leaky"], m)
    np.testing.assert_array_equal(again.score(target["leaky"]), attack.score(target["leaky"]))


def test_shadow_attack_with_one_shadow_selects_on_its_folds(target: dict) -> None:
    shadows = _shadows(np.random.default_rng(4), 1, 300)
    attack = ShadowAttack(shadows, candidates=SHADOW_CANDIDATES[:2]).fit(
        target["leaky"], np.zeros(300)
    )
    assert set(attack.held_out_) == set(SHADOW_CANDIDATES[:2])
    assert rank_auc(target["membership"], attack.score(target["leaky"])) > 0.75
    with pytest.raises(ValueError, match="unknown inputs"):
        ShadowAttack(shadows, candidates=(("logreg", "gradients"),))
