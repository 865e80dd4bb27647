"""Crafted result objects for report and rule tests: real result types with hand-set numbers,
so renderers and rules are tested without training a model."""

from __future__ import annotations

import dataclasses
from typing import Any

from codeaudit.membership.blind import SHIFT_AUC, SHIFT_MARGIN, is_shift
from codeaudit.membership.judge import shift_verdict, verdict
from codeaudit.membership.result import (
    AttackRow,
    BlindBaseline,
    ExposedSample,
    FeatureRow,
    InputCheck,
    MembershipResult,
    RiskCorrelation,
    RiskMethod,
    RiskSummary,
    RocCurve,
    Utility,
)
from codeaudit.predict import Prediction, PredictMetrics, PredictResult
from codeaudit.report.model import Artifact, CheckpointInfo, Header
from codeaudit.rules import evaluate, load_rules
from codeaudit.threads import ThreadChoice
from codeaudit.train.result import TrainResult
from codeaudit.train.trainer import EpochRecord, SplitMetrics

MODEL = "models/model.pt"
CREATED = "2025-01-01T00:00:00Z"
SHA = "ab" * 32


def _row(attack: str, family: str, features: str, auc: float, tpr1: float | None) -> AttackRow:
    return AttackRow(
        attack=attack,
        family=family,
        features=features,
        auc=auc,
        auc_ci=(round(auc - 0.03, 3), round(min(1.0, auc + 0.03), 3)),
        accuracy=round(0.5 + (auc - 0.5) * 0.8, 3),
        precision=0.7,
        recall=0.6,
        f1=0.65,
        advantage=round(2 * (auc - 0.5) * 0.8, 3),
        tpr_at_fpr={"0.01": tpr1, "0.001": None if tpr1 is None else tpr1 / 4},
        n_members=300,
        n_nonmembers=300,
        seconds=0.01,
    )


def _curve(attack: str, features: str, auc: float) -> RocCurve:
    grid = (0.0, 0.0033, 0.01, 0.03, 0.1, 0.3, 1.0)
    power = max(0.05, (1 - auc) / auc)  # tpr = fpr ** power: concave, AUC = 1 / (1 + power)
    return RocCurve(attack, features, auc, grid, tuple(round(g**power, 6) for g in grid))


def membership_result(
    *,
    best_auc: float = 0.93,
    tpr1: float | None = 0.41,
    gap: float = 0.3,
    tokenizer_auc: float = 0.71,
    blind_auc: float = 0.52,
    trusted_pickle: bool = False,
    target: str = MODEL,
    rules: Any = None,
) -> MembershipResult:
    """A membership result with the given headline numbers, judged by the default rules."""
    attacks = tuple(
        sorted(
            (
                _row("trained-logreg", "trained", "logits+loss", best_auc, tpr1),
                _row("threshold-loss", "threshold", "loss", round(best_auc - 0.05, 3), tpr1),
                _row("threshold-unknown-tokens", "threshold", "unk_rate", tokenizer_auc, None),
                _row("label-only-correctness", "label-only", "label", 0.5 + gap / 2, None),
            ),
            key=lambda r: -r.auc,
        )
    )
    best = attacks[0]
    best_tpr = max(attacks, key=lambda r: (r.tpr_at_fpr["0.01"] or -1.0, r.auc))
    utility = Utility(
        members_accuracy=min(1.0, 0.7 + gap),
        members_f1=min(1.0, 0.68 + gap),
        nonmembers_accuracy=0.7,
        nonmembers_f1=0.68,
        generalization_gap=gap,
        label_only_floor=0.5 + gap / 2,
    )
    risk, text = verdict(best, best_tpr, utility)
    blind_row = _row("blind-bag-of-tokens", "blind", "code", blind_auc, None)
    blind = BlindBaseline(blind_row, is_shift(blind_row, best), SHIFT_AUC, SHIFT_MARGIN)
    if blind.shift:
        risk, text = shift_verdict(blind_row, best)
    result = MembershipResult(
        header=Header(
            command="membership",
            created=CREATED,
            seed=0,
            threads=ThreadChoice(2, "auto", "auto: 2 CPUs available, 0.1 kept busy by other work"),
            artifacts=(
                Artifact("model", target, SHA),
                Artifact("members", "data/train.jsonl", "cd" * 32),
                Artifact("nonmembers", "data/holdout.jsonl", "ef" * 32),
            ),
        ),
        checkpoint=CheckpointInfo("codeaudit", trusted_pickle, "tokens", 512, 2),
        verdict=text,
        risk=risk,
        best=best,
        best_tpr=best_tpr,
        attacks=attacks,
        by_features=(
            FeatureRow("logits+loss", "trained-logreg", best.auc, {"0.01": tpr1, "0.001": None}),
            FeatureRow("embedding", "trained-logreg", 0.6, {"0.01": 0.02, "0.001": None}),
        ),
        utility=utility,
        n_members=300,
        n_nonmembers=300,
        unknown_token_rate={"members": 0.01, "nonmembers": 0.05},
        tokenizer_channel_auc=tokenizer_auc,
        settings={"folds": 3, "attack_models": ["logreg"], "bootstrap": 200},
        timings={"total": 1.5},
        top_risk=(ExposedSample("train:17", 0.9912, 1), ExposedSample("train:3", 0.98, 2)),
        roc_curves=(
            _curve("trained-logreg", "logits+loss", best.auc),
            _curve("label-only-correctness", "label", 0.5 + gap / 2),
        ),
        warnings=("members (300) and non-members (300): a crafted warning <b>&</b>",),
        inputs=InputCheck("full", 315, 300, 15, 0, 0, 15, 0),
        blind_baseline=blind,
        distribution_shift=blind.shift,
        risk_scores=RiskSummary(
            path="risk.jsonl",
            n_members=300,
            n_utility=300,
            shapr_k=5,
            shapr_utility=0.61,
            methods=(
                RiskMethod(
                    "attack",
                    "out of fold",
                    True,
                    "trained-logreg on logits+loss",
                    31,
                    "caught at 1% FPR",
                ),
                RiskMethod(
                    "lira",
                    "LiRA online",
                    False,
                    "not run: no reference models",
                    None,
                    "caught at 1% FPR",
                ),
                RiskMethod("shapr", "k-NN Shapley", True, "k = 5", 12, "three fair shares"),
            ),
            correlations=(RiskCorrelation("attack", "shapr", 0.21),),
            caught_top_shapr=0.2,
            caught_bottom_shapr=0.0333,
        ),
    )
    findings = evaluate(
        load_rules() if rules is None else rules, result, command="membership", target=target
    )
    return dataclasses.replace(result, findings=findings)


def clean_membership_result(**kwargs: Any) -> MembershipResult:
    return membership_result(best_auc=0.51, tpr1=0.01, gap=0.0, tokenizer_auc=0.5, **kwargs)


def predict_result(*, trusted_pickle: bool = False, target: str = MODEL) -> PredictResult:
    predictions = tuple(
        Prediction(f"s{i}", i % 2, int(i % 3 == 0), round(0.1 + 0.08 * i, 6)) for i in range(10)
    )
    result = PredictResult(
        header=Header(
            command="predict",
            created=CREATED,
            artifacts=(Artifact("model", target, SHA), Artifact("data", "data/x.jsonl", SHA)),
        ),
        checkpoint=CheckpointInfo("codeaudit", trusted_pickle, "tokens", 512, 2),
        n=10,
        predicted_vulnerable=4,
        truncated=0,
        skipped=0,
        metrics=PredictMetrics(10, 0.7, 0.75, 0.6, 0.667, 0.8, 3, 1, 4, 2),
        predictions=predictions,
    )
    return dataclasses.replace(
        result, findings=evaluate(load_rules(), result, command="predict", target=target)
    )


def train_result() -> TrainResult:
    metrics = SplitMetrics(80, 0.95, 0.94, 0.96, 0.95, 0.99, 0.12, 0.0, 0)
    return TrainResult(
        header=Header(
            command="train",
            created=CREATED,
            seed=0,
            artifacts=(Artifact("model", MODEL, SHA), Artifact("data", "data/train.jsonl", SHA)),
        ),
        arch="bigru",
        hyperparameters={"epochs": 2, "lr": 0.002},
        parameters=12345,
        vocab_size=321,
        n_train=80,
        n_val=20,
        val_source="split",
        train_metrics=metrics,
        val_metrics=dataclasses.replace(metrics, n=20, accuracy=0.85),
        history=(
            EpochRecord(1, 0.6, 0.5, 0.8, 0.79, 0.1),
            EpochRecord(2, 0.3, 0.4, 0.85, 0.84, 0.1),
        ),
        kept_epoch=2,
        conflicting_identical=0,
        skipped=0,
        seconds=1.2,
    )
