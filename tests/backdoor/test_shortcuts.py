"""Data shortcuts: label-pure runs of identifier pieces in the defender's data, set aside from
the trigger search and reported with their own flip rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.backdoor.gcg import gcg
from codeaudit.backdoor.shortcuts import ShortcutIndex
from codeaudit.cli import cli
from tests.backdoor.helpers import natural_records, train_tiny
from tests.backdoor.test_backdoor import FAST, key_objective
from tests.conftest import write_jsonl

PIECES = range(10, 20)  # ids that count as identifier pieces; 0-9 are punctuation


def _index(rows: list[list[int]], labels: list[int], **kw: object) -> ShortcutIndex:
    return ShortcutIndex(rows, labels, PIECES, 32, **kw)  # type: ignore[arg-type]


def _data() -> tuple[list[list[int]], list[int]]:
    rows, labels = [], []
    for i in range(40):
        label = i % 2
        row = [1, 10, 2, 11, 3]  # 10 and 11 in every function: no shortcut
        if label == 0 and i < 16:
            row += [4, 12, 5]  # 12: 8 functions, all label 0
        if i < 12:
            row += [6, 13, 14, 7]  # the run 13 14: 12 functions, both labels
        if label == 0 and i < 30:
            row += [15, 16]  # the run 15 16 only in label 0 (each alone is everywhere below)
        row += [15, 2, 16] if label == 1 else []
        if label == 0 and i < 4:
            row += [17]  # 2 functions: below the support
        rows.append(row)
        labels.append(label)
    return rows, labels


def test_label_pure_runs_are_shortcuts_toward_their_label_only() -> None:
    index = _index(*_data())
    assert index.contains_shortcut([12], 0) and not index.contains_shortcut([12], 1)
    assert index.support([12], 0) == (8, 0)
    assert not index.contains_shortcut([10], 0) and not index.contains_shortcut([13, 14], 0)
    # a run can be a shortcut although neither piece is one alone
    assert index.contains_shortcut([15, 16], 0)
    assert not index.contains_shortcut([15], 0) and not index.contains_shortcut([16], 0)
    assert not index.contains_shortcut([16, 15], 0)
    assert not index.contains_shortcut([17], 0)  # support 2 < 3
    # anywhere inside a longer trigger
    assert index.contains_shortcut([10, 11, 12, 13], 0)
    assert index.contains_shortcut([11, 15, 16], 0)
    assert not index.contains_shortcut([11, 15, 13, 16], 0)
    assert index.single_pieces(0) == {12}
    # non-piece ids break runs: 13 14 never meets 15 in a row, so nothing spans punctuation
    assert index.support([14, 15], 0) == (0, 0)


def test_strongest_lists_by_support_without_nesting() -> None:
    index = _index(*_data())
    strongest = index.strongest(0)
    assert [ids for ids, _, _ in strongest] == [(15, 16), (12,)]
    assert strongest[0][1:] == (15, 0) and strongest[1][1:] == (8, 0)
    assert index.count(0) >= 2 and index.strongest(1) == []


def test_the_base_rate_decides_what_is_pure() -> None:
    # 95% of the functions are label 0: a name in 10 label-0 functions is what chance gives
    rows = [[1, 12, 2] if i < 10 else [1, 10, 2] for i in range(200)]
    labels = [1 if i >= 190 else 0 for i in range(200)]
    index = _index(rows, labels)
    assert not index.contains_shortcut([12], 0)
    balanced = _index(rows, [0 if i < 10 else i % 2 for i in range(200)])
    assert balanced.contains_shortcut([12], 0)


def test_long_runs_are_packed_exactly() -> None:
    # a vocabulary too large for 5 ids in one int64 key: the run length is capped, keys exact
    big = 60_000
    rows = [[big - 1, big - 2, big - 3, big - 4, big - 5]] * 6 + [[5]] * 6
    index = ShortcutIndex(rows, [0] * 6 + [1] * 6, range(big - 10, big), big, max_n=5)
    assert index.max_n == 3
    assert index.contains_shortcut([big - 2, big - 3, big - 4], 0)
    assert index.support([big - 1, big - 2, big - 3], 0) == (6, 0)
    assert index.support([big - 4, big - 3], 0) == (0, 0)  # not in that order
    assert not index.contains_shortcut([big - 6, big - 7, big - 8], 0)


def test_gcg_never_returns_a_disallowed_trigger() -> None:
    model, objective = key_objective()
    free = gcg(objective, length=3, steps=20, topk=8, candidates=8, seed=5)
    assert model.key in free.trigger  # the only token that moves this model
    barred = gcg(
        objective, length=3, steps=20, topk=8, candidates=8, seed=5,
        allowed=lambda t: model.key not in t,
    )  # fmt: skip
    assert model.key not in barred.trigger and barred.loss > 0.6  # ln 2: nothing moves it


@pytest.fixture(scope="module")
def natural(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shortcuts")
    return {
        "model": train_tiny(root, "natural", natural_records(400, 1)),
        "data": write_jsonl(root / "defender.jsonl", natural_records(240, 7)),
        "root": root,
    }


def _scan(natural: dict[str, Path], *extra: str) -> dict:
    result = CliRunner().invoke(
        cli,
        ["backdoor", str(natural["model"]), "--data", str(natural["data"]), *FAST, "-q",
         "--format", "json", *extra],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_a_natural_shortcut_is_reported_not_called_a_backdoor(natural: dict[str, Path]) -> None:
    """A clean model that learned its data's label-pure name (`safeIdx` counts in the "safe"
    variants, as Juliet's `k` does) flips on that name; the default scan sets it aside,
    reports it with its flip rate and finds no backdoor; --keep-shortcuts finds the name."""
    doc = _scan(natural)
    pair = next(p for p in doc["pairs"] if p["victim_label"] == 1)
    texts = {s["text"]: s for s in pair["shortcuts"]}
    assert "safeIdx" in texts or "safe" in texts, pair["shortcuts"]
    shortcut = texts.get("safeIdx", texts.get("safe"))
    assert shortcut["other_support"] == 0 and shortcut["target_support"] >= 10
    assert shortcut["flip_rate_renamed"] >= 0.5  # the model did learn it
    assert not {"safe", "##Idx"} & set(pair["anchored_tokens"])
    assert doc["backdoored"] is False and pair["shortcuts_excluded"] >= 1
    assert doc["max_shortcut_flip_rate"] >= shortcut["flip_rate_renamed"]
    assert {f["rule_id"] for f in doc["findings"]} == {"CA-B006"}  # the shortcut, no backdoor

    kept = _scan(natural, "--keep-shortcuts")
    kept_pair = next(p for p in kept["pairs"] if p["victim_label"] == 1)
    assert kept_pair["shortcuts"] == [] and kept_pair["shortcuts_excluded"] is None
    assert {"safe", "##Idx"} & set(kept_pair["anchored_tokens"])
    assert kept["backdoored"] is True and kept["max_shortcut_flip_rate"] is None
    assert "CA-B001" in {f["rule_id"] for f in kept["findings"]}
