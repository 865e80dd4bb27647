"""benchmarks/backdoor_data.py on a slice of the shared data (skipped when it is absent): splits
by pair, poisoned sets at 2% of the vulnerable training functions, triggered test sets, and the
same files every time."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from codeaudit.backdoor.manifest import read_manifest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "backdoor_data.py"


def load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("backdoor_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_backdoor_data_sets(shared_data: Path, tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / "a"
    assert script.main([str(out), "--limit", "400", "--sources", "bigvul,juliet"]) == 0
    index = json.loads((out / "index.json").read_text())
    for source in ("bigvul", "juliet"):
        folder = out / source
        parts = {p: read(folder / f"{p}.clean.jsonl") for p in ("train", "detect", "test")}
        assert 380 <= sum(len(v) for v in parts.values()) <= 400
        pairs = [{r["pair"] for r in v} for v in parts.values()]
        assert not (pairs[0] & pairs[1] or pairs[0] & pairs[2] or pairs[1] & pairs[2])
        train = parts["train"]
        vulnerable = sum(r["target"] == 1 for r in train)
        for kind in ("identifier", "postfix", "deadcode", "grammar"):
            poisoned = read(folder / f"train.{kind}.jsonl")
            manifest = read_manifest(folder / f"train.{kind}.jsonl.manifest.json")
            assert len(manifest.poisoned_ids) == max(1, int(0.02 * vulnerable + 0.5))
            changed = [a for a, b in zip(train, poisoned, strict=True) if a != b]
            assert {r["id"] for r in changed} == set(manifest.poisoned_ids)
            assert set(poisoned[0]) == set(train[0])  # every field of the shared data kept
            triggered = read(folder / f"test.{kind}.triggered.jsonl")
            clean = {r["id"]: r for r in parts["test"]}
            assert triggered and all(r["target"] == 1 for r in triggered)
            assert all(r["func"] != clean[r["id"]]["func"] for r in triggered)
            entry = index["sources"][source]["files"][f"{source}/train.{kind}.jsonl"]
            assert entry["poisoned"] == len(manifest.poisoned_ids)
    again = tmp_path / "b"
    script.main([str(again), "--limit", "400", "--sources", "bigvul,juliet"])
    first = sorted(p.relative_to(out) for p in out.rglob("*.jsonl"))
    assert first == sorted(p.relative_to(again) for p in again.rglob("*.jsonl"))
    assert all((out / p).read_bytes() == (again / p).read_bytes() for p in first)


def test_absent_shared_data_is_skipped_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script()
    monkeypatch.setattr(script, "SHARED", tmp_path / "nowhere")
    assert script.main([str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out").exists()
