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


@pytest.mark.parametrize("run", [r for r in ATTACK_RUNS if r.applies(_session(0.0))],
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
