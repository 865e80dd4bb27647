"""The registry of attack runs: every attack class is run by some registered run, every run that
needs no model works on features alone, and a registered run is a run the check makes."""

from __future__ import annotations

import numpy as np
import pytest

from codeaudit.check import Context
from codeaudit.config import MembershipConfig
from codeaudit.data.samples import Dataset, Sample
from codeaudit.membership import runs
from codeaudit.membership.attacks import ATTACK_CLASSES
from codeaudit.membership.evaluate import evaluate_unsupervised, make_folds
from codeaudit.membership.features import FEATURES, FULL_ACCESS, all_feature_sets, usable_features
from codeaudit.membership.runs import ATTACK_RUNS, AttackRun, Session, run_attacks
from tests.membership.test_attacks import features as synthetic_features

N = 300


def _session(leak: float) -> Session:
    rng = np.random.default_rng(1)
    membership = np.r_[np.ones(N // 2), np.zeros(N // 2)].astype(np.int64)
    config = MembershipConfig(model="m", members="a", nonmembers="b", n_boot=20, folds=3)
    samples = tuple(Sample(str(i), "int f();", label=0) for i in range(N))
    return Session(
        config=config,
        features=synthetic_features(rng, membership, leak),
        membership=membership,
        candidates=Dataset(samples=samples, path="c", sha256=None),
        folds=make_folds(membership, 3, 0),
        usable=usable_features(object()),
        feature_sets=all_feature_sets()[:4],
        context=Context(),
    )


def test_every_attack_class_is_run_by_a_registered_run() -> None:
    covered = {cls for run in ATTACK_RUNS for cls in run.attacks}
    assert set(ATTACK_CLASSES.values()) <= covered
    assert len({run.name for run in ATTACK_RUNS}) == len(ATTACK_RUNS)
    assert set(FULL_ACCESS) >= {"label", "embedding"} and FEATURES


ATTACKS_ON_THE_MODEL = [r for r in ATTACK_RUNS if r.attacks[0].family != runs.BASELINE_FAMILY]


@pytest.mark.parametrize("run", [r for r in ATTACKS_ON_THE_MODEL if r.applies(_session(0.0))],
                         ids=lambda r: r.name)  # fmt: skip
def test_runs_that_need_no_model_find_leaks_and_only_leaks(run: AttackRun) -> None:
    leaky, clean = _session(3.0), _session(0.0)
    found = run.run(leaky)
    assert found, run.name
    for ev in found:
        assert len(ev.scores) == N and np.isfinite(ev.scores).all()
        assert ev.family == run.attacks[0].family or run.name == "reference"
    # correctness reads only whether the label is right, the weakest signal of the leak here
    assert max(ev.score.auc for ev in found) > (0.55 if run.name.startswith("label") else 0.65)
    assert max(ev.score.auc for ev in run.run(clean)) < 0.62


def test_a_registered_run_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from codeaudit.membership.attacks.threshold import ThresholdAttack

    def loss_again(session: Session) -> list:
        return [evaluate_unsupervised(ThresholdAttack("loss"), session.features,
                                      session.membership, session.folds, **session.kw)]  # fmt: skip

    extra = AttackRun("extra", (ThresholdAttack,), "extra_attacks", lambda s: True, loss_again)
    session = _session(1.0)
    before = [ev.attack for ev in run_attacks(session)]
    monkeypatch.setattr(runs, "ATTACK_RUNS", (*ATTACK_RUNS, extra))
    after = [ev.attack for ev in run_attacks(_session(1.0))]
    assert after == [*before, "threshold-loss"]
    assert "extra_attacks" not in session.context.timings
    timed = _session(1.0)
    run_attacks(timed)
    assert "extra_attacks" in timed.context.timings


def _with_code(session: Session, member_code: str, nonmember_code: str) -> Session:
    """Candidates whose code is drawn from one template for members and one for non-members,
    numbered independently of membership."""
    numbers = np.random.default_rng(5).permutation(len(session.membership))
    samples = tuple(
        Sample(str(i), (member_code if m else nonmember_code).format(i=numbers[i]), label=0)
        for i, m in enumerate(session.membership)
    )
    session.candidates = Dataset(samples=samples, path="c", sha256=None)
    return session


def test_the_blind_baseline_sees_the_data_not_the_model() -> None:
    """A leak in the model's outputs leaves the blind baseline at chance; code that differs
    between members and non-members (another vocabulary, another length) does not."""
    blind = next(r for r in ATTACK_RUNS if r.name == "blind")
    assert blind.applies(_session(0.0))
    same = "int f_{i}(int a) {{ return a + {i}; }}"
    leaky = blind.run(_with_code(_session(3.0), same, same))[0]
    assert leaky.family == runs.BASELINE_FAMILY and len(leaky.scores) == N
    assert abs(leaky.score.auc - 0.5) < 0.1
    other = "static long q{i}_zz(long zz_w) {{\n  long vv = zz_w * 7; /* x */\n  return vv; }}"
    shifted = blind.run(_with_code(_session(0.0), same, other))[0]
    assert shifted.score.auc > 0.95


def test_trained_run_gives_the_probability_block_to_the_distance_models() -> None:
    """What the session's distance sets add to the trained run (the check sets them when
    --features is left at its default): the SVM reads the block, logistic regression does not,
    and the selection chooses among all the pairs."""
    import dataclasses

    from codeaudit.membership.evaluate import SELECTED

    session = _session(3.0)
    session.config = dataclasses.replace(session.config, classifiers=("logreg", "svm"))
    session.feature_sets = [("loss",)]
    session.distance_sets = [("probs-label",)]
    found = runs._trained(session)
    assert [(ev.attack, ev.features) for ev in found][:3] == [
        ("trained-logreg", ("loss",)),
        ("trained-svm", ("loss",)),
        ("trained-svm", ("probs-label",)),
    ]
    assert [ev.attack for ev in found][3:] == [SELECTED]
    assert found[2].score.auc > 0.65
