"""Same inputs and seed, same results: every command gives byte-identical outputs when run
again: the same checkpoint bytes, and the same JSON and SARIF reports once the fields that record
when it ran and how long it took are normalised (harness.VOLATILE_KEYS, listed in
docs/reliability.md). Twice in one process (fast), and in two fresh processes with different
Python hash seeds, so that set and dict orders of strings differ (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.harness import COMMANDS, VOLATILE_KEYS, TwinRuns, normalised


def _outputs(run: Path, name: str) -> list[str]:
    return sorted(str(p.relative_to(run / name)) for p in (run / name).rglob("*") if p.is_file())


def _strip(document: object) -> object:
    if isinstance(document, dict):
        return {k: _strip(v) for k, v in document.items() if k not in VOLATILE_KEYS}
    if isinstance(document, list):
        return [_strip(v) for v in document]
    return document


def assert_identical(twins: TwinRuns, name: str) -> None:
    index = list(COMMANDS).index(name)
    assert twins.codes[0][index] == twins.codes[1][index]
    a, b = (run / name for run in twins.runs)
    files = _outputs(twins.runs[0], name)
    assert files == _outputs(twins.runs[1], name)
    assert set(files) == set(COMMANDS[name].outputs)
    for file in files:
        left, right = (a / file).read_bytes(), (b / file).read_bytes()
        if file.endswith((".json", ".sarif")):
            doc_a, doc_b = json.loads(left), json.loads(right)
            assert doc_a != doc_b or left == right  # volatile fields differ, or nothing does
            assert json.dumps(normalised(doc_a)) == json.dumps(normalised(doc_b)), file
            assert _strip(doc_a) == _strip(doc_b)
        else:
            assert left == right, f"{name}/{file} differs between runs"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_same_inputs_and_seed_give_identical_outputs(twins: TwinRuns, name: str) -> None:
    assert_identical(twins, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_identical_across_processes_and_hash_seeds(process_twins: TwinRuns, name: str) -> None:
    assert_identical(process_twins, name)


def test_the_normalised_fields_are_only_times(twins: TwinRuns) -> None:
    """Each volatile key holds a time stamp, a duration or the thread choice wherever it occurs,
    so normalising it cannot hide a difference in results."""
    seen: set[str] = set()

    def walk(document: object) -> None:
        if isinstance(document, dict):
            for key, value in document.items():
                if key in VOLATILE_KEYS:
                    seen.add(key)
                    if key == "timings":
                        assert all(isinstance(v, (int, float)) for v in value.values())
                    elif key == "threads":  # JSON header: the choice; SARIF: the count
                        assert isinstance(value, int) or set(value) == {"count", "source", "reason"}
                    elif key == "seconds":
                        assert isinstance(value, (int, float))
                    else:
                        assert value is None or (isinstance(value, str) and value.endswith("Z"))
                else:
                    walk(value)
        elif isinstance(document, list):
            for value in document:
                walk(value)

    for name in COMMANDS:
        for file in _outputs(twins.runs[0], name):
            if file.endswith((".json", ".sarif")):
                walk(json.loads((twins.runs[0] / name / file).read_text()))
    assert {"created", "started", "finished", "seconds", "timings", "threads"} <= seen
