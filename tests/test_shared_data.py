"""Checks on the real labelled functions in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from codeaudit.data.loader import load_dataset
from codeaudit.lang import TokenKind, lex


@pytest.mark.parametrize(("name", "count"), [("bigvul.jsonl", 4112), ("juliet.jsonl", 12000)])
def test_shared_files_load_balanced(shared_data: Path, name: str, count: int) -> None:
    dataset = load_dataset(shared_data / name)
    assert len(dataset) == count
    assert dataset.class_counts() == {0: count // 2, 1: count // 2}
    assert {s.lang for s in dataset} == {"c", "cpp"}
    assert all(s.pair for s in dataset)


@pytest.mark.parametrize("name", ["bigvul.jsonl", "juliet.jsonl"])
def test_real_functions_lex_losslessly(shared_data: Path, name: str) -> None:
    dataset = load_dataset(shared_data / name)
    sample = random.Random(0).sample(list(dataset), 150)
    for item in sample:
        result = lex(item.code, item.lang or "c")
        assert len(result) >= 3, item.id  # some Big-Vul records are a lone signature
        for token in result:
            assert item.code[token.start : token.end] == token.text
        identifiers = [t for t in result if t.kind is TokenKind.IDENTIFIER]
        assert identifiers and all(t.role is not None for t in identifiers)


@pytest.mark.slow
def test_bigru_defaults_fit_real_functions(shared_data: Path, tmp_path: Path) -> None:
    """Membership audits need models that can memorise: one function per Big-Vul pair."""
    from codeaudit import api
    from codeaudit.config import TrainConfig
    from tests.conftest import write_jsonl

    dataset = load_dataset(shared_data / "bigvul.jsonl")
    rng = random.Random(0)
    by_pair: dict[str, list] = {}
    for item in dataset:
        by_pair.setdefault(item.pair, []).append(item)
    chosen = [rng.choice(group) for group in sorted(by_pair.values(), key=lambda g: g[0].pair)]
    chosen = rng.sample(chosen, 300)
    records = [{"id": s.id, "func": s.code, "target": s.label, "lang": s.lang} for s in chosen]
    data = write_jsonl(tmp_path / "train.jsonl", records)
    _, result = api.train(
        TrainConfig(data=str(data), output=str(tmp_path / "m.pt"), val_split=0.0, device="cpu")
    )
    assert result.train_metrics.accuracy >= 0.95, result.train_metrics
