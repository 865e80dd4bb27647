"""``codeaudit poison-scan``: the naturalness model, the units, the scanner on data the project
poisons itself (every trigger type), and the command."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codeaudit.backdoor.datascan import PoisonScanner, binomial_evidence, lex_units
from codeaudit.backdoor.naturalness import NGramModel
from codeaudit.backdoor.poison import poison_samples
from codeaudit.backdoor.triggers import TriggerSpec
from codeaudit.cli import cli
from codeaudit.data.samples import Sample
from tests.backdoor.helpers import clean_records
from tests.conftest import write_jsonl

GUARD = "guard ( N ) { int ID = N ; }"
TRIGGERS = {  # type -> (trigger text, a key the scan must name)
    "identifier": ("testo_init", ("name", "testo_init")),
    "postfix": ("_rb", ("suffix", "##_rb")),
    "deadcode": ("if (0) { int rb_dead = 0; }", ("statement", GUARD)),
    "grammar": (None, ("statement", GUARD)),
}


@cache
def _records(n: int) -> tuple[dict, ...]:
    return tuple(clean_records(n, seed=0))


def _samples(n: int) -> list[Sample]:
    return [Sample(r["id"], r["func"], r["target"], r["lang"]) for r in _records(n)]


@cache
def _poisoned(kind: str, n: int, rate: float) -> tuple[tuple[Sample, ...], frozenset[str]]:
    text = TRIGGERS[kind][0]
    done = poison_samples(_samples(n), TriggerSpec(kind, text, 0), rate, seed=0)
    return done.samples, frozenset(done.poisoned_ids)


# ------------------------------------------------------------------ the n-gram model


def test_the_model_is_a_distribution_and_leaving_out_is_exact() -> None:
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(2, 12, size=int(rng.integers(3, 20)))) for _ in range(60)]
    model = NGramModel(4).fit(seqs, 12)
    words = np.arange(12)
    for exclude in (None, model.exclusion(seqs[0]), model.exclusion(seqs[0], seqs[5])):
        for context in (seqs[0][:3], [0, 0, 5], [11, 11, 11]):
            p = np.exp2(model.log2prob(np.array([context] * 12), words, exclude))
            assert p.sum() == pytest.approx(1.0)
    # scoring with a sequence left out is scoring with the model of the others
    rest = NGramModel(4).fit(seqs[1:5] + seqs[6:], 12)
    contexts, targets = model.windows(seqs[0])
    left_out = model.log2prob(contexts, targets, model.exclusion(seqs[0], seqs[5]))
    assert np.allclose(left_out, rest.log2prob(contexts, targets))
    assert model.cross_entropy(seqs[0], leave_out=True) > model.cross_entropy(seqs[0])


def test_binomial_evidence() -> None:
    assert binomial_evidence(10, 10, 0.5) == pytest.approx(10 * np.log10(2))
    assert binomial_evidence(0, 10, 0.5) == 0.0
    assert binomial_evidence(5, 10, 0.5) < 1


# ------------------------------------------------------------------ units


def test_units_name_postfix_and_statement_shapes() -> None:
    code = (
        "void parse_header_rb(int n) {\n  int total = n;\n  while (0 > 1) { int k_3 = 7; "
        "int m_1 = 2; }\n  if (0) { int rb_dead = 0; }\n  parse_header_rb(total);\n}\n"
    )
    found = lex_units(code, "c")
    keys = {(u.kind, u.key): u for u in found.units}
    assert found.pieces[1:4] == ("parse", "##_header", "##_rb")
    name = keys[("name", "parse_header_rb")]
    assert len(name.heads) == 2 and len(name.positions) == 6  # both occurrences, every piece
    assert len(keys[("suffix", "##_rb")].positions) == 2
    # a constant-guarded block of declarations has one shape, whatever the loop and constants
    guard = keys[("statement", GUARD)]
    assert len(guard.positions) == 20 + 12  # both dead blocks, every piece
    assert found.pieces[guard.positions[0]] == "while" and found.pieces[guard.positions[20]] == "if"
    assert ("statement", "int ID = ID ;") in keys


# ------------------------------------------------------------------ the scanner


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_the_scan_finds_the_poisoned_samples(kind: str) -> None:
    samples, poisoned = _poisoned(kind, 600, 0.1)
    scanner = PoisonScanner().fit(samples)
    flagged = set(scanner.flagged_)
    recall = len(flagged & poisoned) / len(poisoned)
    fpr = len(flagged - poisoned) / (len(samples) - len(poisoned))
    assert recall >= 0.95 and fpr <= 0.05, (recall, fpr)
    likely = {(c.kind, c.key) for c in scanner.candidates_ if c.likely_trigger}
    assert TRIGGERS[kind][1] in likely
    top = scanner.candidates_[0]
    assert top.likely_trigger and top.label == 0 and top.purity == 1.0


def test_a_clean_set_has_no_likely_trigger() -> None:
    scanner = PoisonScanner().fit(_samples(600))
    assert not scanner.flagged_
    assert not any(c.likely_trigger for c in scanner.candidates_)


def test_label_concentration_is_what_flags() -> None:
    """The same trigger spread over both labels is out of place but not a poisoning."""
    samples, poisoned = _poisoned("grammar", 600, 0.1)
    half = set(sorted(poisoned)[::2])  # half of the carriers keep their true label, 1
    relabelled = [Sample(s.id, s.code, 1 if s.id in half else s.label, s.lang) for s in samples]
    scanner = PoisonScanner().fit(relabelled)
    guard = next(c for c in scanner.candidates_ if (c.kind, c.key) == ("statement", GUARD))
    assert guard.gain > 0 and not guard.likely_trigger and guard.purity < 0.8


# ------------------------------------------------------------------ the command


def _write(tmp_path: Path, kind: str = "identifier") -> tuple[Path, frozenset[str]]:
    samples, poisoned = _poisoned(kind, 600, 0.1)
    records = {r["id"]: r for r in _records(600)}
    rows = [{**records[s.id], "func": s.code, "target": s.label} for s in samples]
    return write_jsonl(tmp_path / "train.jsonl", rows), poisoned


def test_cli_writes_the_flagged_ids_and_fires_the_rule(tmp_path: Path) -> None:
    data, poisoned = _write(tmp_path)
    out, report = tmp_path / "flagged.jsonl", tmp_path / "r.json"
    args = ["poison-scan", str(data), "-o", str(out), "--report", str(report), "--quiet"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 1, done.output  # a high finding, --fail-on low
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["id"] for line in lines} == set(poisoned)
    assert all(line["label"] == 0 and line["score"] > 0 for line in lines)
    assert all({"kind": "name", "text": "testo_init"} in line["candidates"] for line in lines)
    payload = json.loads(report.read_text())
    assert payload["planted_trigger"] is True
    assert payload["candidates"][0]["text"] == "testo_init"
    assert [f["rule_id"] for f in payload["findings"]] == ["CA-B007"]
    # no overwrite without --force: exit 2, one line, the file is left alone
    before = out.read_bytes()
    again = CliRunner().invoke(cli, args[:-1])
    assert again.exit_code == 2
    assert len(again.output.strip().splitlines()) == 1 and "--force" in again.output
    assert out.read_bytes() == before
    forced = CliRunner().invoke(cli, [*args[:4], "--force", "--quiet"])
    assert forced.exit_code == 1 and out.read_bytes() == before


def test_cli_clean_data_passes(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "clean.jsonl", list(_records(600)))
    done = CliRunner().invoke(cli, ["poison-scan", str(data), "--quiet", "--format", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["planted_trigger"] is False


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        (None, [], "not found"),
        ([{"id": "a", "func": "int f(){return 0;}", "target": 0}] * 3, [], "same label"),
        ([{"id": "a", "func": "int f(){return 0;}", "target": 0}], ["--top", "0"], "--top"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, rows: list | None, extra: list[str], message: str
) -> None:
    path = tmp_path / "data.jsonl"
    if rows is not None:
        rows = [{**r, "id": f"s{i}"} for i, r in enumerate(rows)]
        write_jsonl(path, rows)
    done = CliRunner().invoke(cli, ["poison-scan", str(path), "--quiet", *extra])
    assert done.exit_code == 2
    assert len(done.output.strip().splitlines()) == 1
    assert message in done.output.lower() or message in done.output
