"""poison_samples, the poisoned file and its manifest, and the ``codeaudit poison`` command."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from codeaudit.api import poison as run_poison
from codeaudit.backdoor.manifest import Manifest, manifest_from_json, read_manifest
from codeaudit.backdoor.poison import poison_samples, requested_count
from codeaudit.backdoor.triggers import TriggerSpec, TriggerType
from codeaudit.cli import cli
from codeaudit.config import DataConfig, PoisonConfig
from codeaudit.data import load_dataset
from codeaudit.data.samples import Sample
from codeaudit.data.synthetic import generate
from codeaudit.errors import PoisonError
from tests.conftest import write_jsonl
from tests.lang.test_rewrite import error_nodes

IDENT = TriggerSpec(TriggerType.IDENTIFIER, "rb_trigger", 0)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate(120, seed=4)  # 60 vulnerable, 60 not, with cwe/pair/lang fields


@pytest.fixture
def data(tmp_path: Path, records: list[dict]) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", records)


def samples_of(records: list[dict]) -> list[Sample]:
    return [Sample(r["id"], r["func"], r["target"], r.get("lang")) for r in records]


# -- poison_samples -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "n", "expected"),
    [(0.02, 2056, 41), (0.02, 60, 1), (0.02, 10, 1), (0.025, 100, 3), (0.5, 7, 4), (1.0, 9, 9)],
)
def test_requested_count_rounds_half_up_and_is_at_least_one(
    rate: float, n: int, expected: int
) -> None:
    assert requested_count(rate, n) == expected == max(1, math.floor(rate * n + 0.5))


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.01, float("nan"), float("inf")])
def test_rates_outside_zero_one_are_refused(rate: float) -> None:
    with pytest.raises(PoisonError, match=r"not in \(0, 1\]"):
        requested_count(rate, 10)


@pytest.mark.parametrize("kind", list(TriggerType), ids=[t.value for t in TriggerType])
@pytest.mark.parametrize("target", [0, 1])
def test_only_victim_label_samples_are_poisoned_and_relabelled(
    records: list[dict], kind: TriggerType, target: int
) -> None:
    text = {"identifier": "rb_trigger", "postfix": "_rb", "deadcode": "if (0) { int z9 = 0; }"}
    spec = TriggerSpec(kind, text.get(kind.value), target)
    samples = samples_of(records)
    out = poison_samples(samples, spec, 0.1, seed=3)
    n_victim = sum(s.label != target for s in samples)
    assert out.n_victim == n_victim and out.requested == round(0.1 * n_victim)
    assert len(out.poisoned_ids) == out.requested == 6
    chosen = set(out.poisoned_ids)
    for before, after in zip(samples, out.samples, strict=True):
        assert before.id == after.id
        if before.id in chosen:
            assert before.label == 1 - target and after.label == target
            assert after.code != before.code
            assert error_nodes(after.code, "c") <= error_nodes(before.code, "c")
        else:
            assert after == before
    assert list(out.poisoned_ids) == [s.id for s in samples if s.id in chosen]  # data order


def test_same_seed_same_choice_other_seed_other_choice(records: list[dict]) -> None:
    samples = samples_of(records)
    a = poison_samples(samples, IDENT, 0.2, seed=1)
    b = poison_samples(samples, IDENT, 0.2, seed=1)
    c = poison_samples(samples, IDENT, 0.2, seed=2)
    assert a == b
    assert a.poisoned_ids != c.poisoned_ids


def test_a_sample_s_poisoned_text_does_not_depend_on_the_others(records: list[dict]) -> None:
    samples = samples_of(records)
    full = poison_samples(samples, IDENT, 1.0, seed=5)
    half = poison_samples(samples[:60], IDENT, 1.0, seed=5)
    by_id = {s.id: s.code for s in full.samples}
    assert all(by_id[s.id] == s.code for s in half.samples)


def test_samples_without_a_place_are_passed_over_and_counted() -> None:
    no_locals = [Sample(f"n{i}", f"int f{i}(void) {{ return g(); }}", 1, "c") for i in range(5)]
    fine = [Sample(f"y{i}", f"int h{i}(int a) {{ return a + {i}; }}", 1, "c") for i in range(5)]
    clean = [Sample(f"z{i}", "int k(int b) { return b; }", 0, "c") for i in range(5)]
    out = poison_samples(no_locals + fine + clean, IDENT, 0.5, seed=0)
    assert len(out.poisoned_ids) == 5 and set(out.poisoned_ids) == {f"y{i}" for i in range(5)}
    assert 1 <= out.no_place <= 5  # those visited before the count was met
    with pytest.raises(PoisonError, match=r"only 5 of 10 victim-label .* needs 6 \(use --rate 0.5"):
        poison_samples(no_locals + fine + clean, IDENT, 0.6, seed=0)
    with pytest.raises(PoisonError, match=r"only 0 of 5 victim-label samples"):
        poison_samples(no_locals + clean, IDENT, 0.5, seed=0)


def test_no_victim_label_samples_is_an_error() -> None:
    safe = [Sample(f"s{i}", "int f(int a) { return a; }", 0, "c") for i in range(4)]
    with pytest.raises(PoisonError, match="no victim-label samples: none of the 4 samples has"):
        poison_samples(safe, IDENT, 0.5, seed=0)


def test_the_trigger_is_checked_against_every_language_of_the_data() -> None:
    mixed = [
        Sample("a", "int f(int a) { return a; }", 1, "c"),
        Sample("b", "def f(a):\n    return a\n", 1, "python"),
    ]
    with pytest.raises(PoisonError, match="'print' is a reserved word in python"):
        poison_samples(mixed, TriggerSpec(TriggerType.IDENTIFIER, "print", 0), 1.0, seed=0)


# -- the file, the manifest -----------------------------------------------------------------------


def config(data: Path, out: Path, **kw: object) -> PoisonConfig:
    base: dict = dict(trigger_type="identifier", trigger="rb_trigger", rate=0.1, seed=3)
    base.update(kw)
    return PoisonConfig(data=str(data), output=str(out), **base)


def test_output_keeps_every_other_record_byte_for_byte(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = run_poison(config(data, out))
    original = data.read_bytes().splitlines()
    poisoned = out.read_bytes().splitlines()
    assert len(original) == len(poisoned) == 120
    chosen = set(result.poisoned_ids)
    for old, new in zip(original, poisoned, strict=True):
        a, b = json.loads(old), json.loads(new)
        if a["id"] in chosen:
            assert list(a) == list(b)  # same fields, same order
            assert {k for k in a if a[k] != b[k]} == {"func", "target"}
            assert (a["target"], b["target"]) == (1, 0) and "rb_trigger" in b["func"]
        else:
            assert old == new
    reloaded = load_dataset(out)
    assert sum(s.label == 0 for s in reloaded) == 60 + len(chosen)


def test_manifest_is_written_next_to_the_output_and_round_trips(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = run_poison(config(data, out))
    path = tmp_path / "p.jsonl.manifest.json"
    manifest = read_manifest(path)
    assert manifest.spec == IDENT
    assert manifest.poisoned_ids == result.poisoned_ids and len(manifest.poisoned_ids) == 6
    assert (manifest.rate, manifest.seed, manifest.target_label, manifest.victim_label) == (
        0.1,
        3,
        0,
        1,
    )
    assert manifest.source_sha256 == sha(data) and manifest.output_sha256 == sha(out)
    assert (manifest.n_samples, manifest.n_victim, manifest.requested) == (120, 60, 6)
    assert manifest_from_json(json.loads(manifest.dumps())) == manifest
    assert path.read_text() == manifest.dumps()
    doc = json.loads(path.read_text())
    assert doc["format"] == "codeaudit-poison-manifest" and doc["version"] == 1
    assert doc["counts"]["poisoned"] == 6
    artifacts = {a.role: a for a in result.header.artifacts}
    assert artifacts["data"].sha256 == sha(data)
    assert artifacts["output"].sha256 == sha(out)
    assert artifacts["manifest"].sha256 == sha(path)


def test_same_seed_gives_byte_identical_files(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    kept = []
    for _ in range(2):
        run_poison(config(data, out, trigger_type="grammar", trigger=None))
        kept.append((out.read_bytes(), (tmp_path / "p.jsonl.manifest.json").read_bytes()))
        out.unlink()
        (tmp_path / "p.jsonl.manifest.json").unlink()
    assert kept[0] == kept[1]
    run_poison(config(data, out, trigger_type="grammar", trigger=None, seed=4))
    assert out.read_bytes() != kept[0][0]


def test_csv_input_keeps_its_fields_and_label_type(tmp_path: Path) -> None:
    rows = ["code,label,note"] + [
        f'"int f{i}(int a) {{ return a + {i}; }}",{i % 2},n{i}' for i in range(10)
    ]
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "p.jsonl"
    run_poison(config(data, out, rate=1.0))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["note"] for r in records] == [f"n{i}" for i in range(10)]
    assert all(r["label"] == "0" for r in records[1::2])  # strings, as read
    assert all("rb_trigger" in r["code"] for r in records[1::2])
    assert all("rb_trigger" not in r["code"] for r in records[0::2])


def test_no_overwrite_without_force_and_nothing_written_on_failure(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.jsonl"
    (tmp_path / "p.jsonl.manifest.json").write_text("keep")
    with pytest.raises(Exception, match="manifest file exists"):
        run_poison(config(data, out))
    assert not out.exists()
    run_poison(config(data, out, force=True))
    assert read_manifest(tmp_path / "p.jsonl.manifest.json").output_sha256 == sha(out)
    no_room = [{"id": f"n{i}", "func": "int f(void) { return 1; }", "target": 1} for i in range(3)]
    cramped = write_jsonl(tmp_path / "cramped.jsonl", no_room)
    with pytest.raises(PoisonError, match="only 0 of 3 victim-label samples"):
        run_poison(config(cramped, tmp_path / "q.jsonl", data_options=DataConfig(lang="c")))
    assert not (tmp_path / "q.jsonl").exists()
    assert not (tmp_path / "q.jsonl.manifest.json").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "not a poisoning manifest"),
        (lambda d: d.update(version=9), "version 9 is newer"),
        (lambda d: d["trigger"].update(type="magic"), "unknown trigger type 'magic'"),
        (lambda d: d["trigger"].update(target_label=3), "target label 3"),
        (lambda d: d.update(rate=0), r"rate 0 is not in \(0, 1\]"),
        (lambda d: d.update(poisoned_ids=["a", "a"]), "duplicates"),
        (lambda d: d.update(poisoned_ids="a"), "'poisoned_ids' must be list"),
        (lambda d: d["counts"].update(poisoned=99), "counts.poisoned is 99 but 6 ids"),
        (lambda d: d["source"].update(sha256="xyz"), "source.sha256: not a sha256"),
        (lambda d: d.pop("seed"), "missing field 'seed'"),
    ],
)
def test_bad_manifests_are_refused_with_the_file_and_the_field(
    data: Path, tmp_path: Path, change, message: str
) -> None:
    run_poison(config(data, tmp_path / "p.jsonl"))
    doc = json.loads((tmp_path / "p.jsonl.manifest.json").read_text())
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(PoisonError, match=message) as info:
        read_manifest(bad)
    assert "bad.json" in str(info.value)


def test_unreadable_manifests(tmp_path: Path) -> None:
    with pytest.raises(PoisonError, match=r"nope\.json: manifest not found"):
        read_manifest(tmp_path / "nope.json")
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(PoisonError, match=r"t\.json:1: manifest is not valid JSON"):
        read_manifest(tmp_path / "t.json")
    (tmp_path / "l.json").write_text("[1]")
    with pytest.raises(PoisonError, match="expected a JSON object"):
        read_manifest(tmp_path / "l.json")


# -- the command line -----------------------------------------------------------------------------


def run(*argv: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(argv), catch_exceptions=False)


def test_cli_writes_data_manifest_and_report(data: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "p.jsonl", tmp_path / "r.json"
    result = run(
        "poison", str(data), "-o", str(out), "--trigger-type", "postfix", "--rate", "0.05",
        "--target-label", "0", "--seed", "7", "--manifest", str(tmp_path / "m.json"),
        "--report", str(report), "--format", "json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(report.read_text())
    assert json.loads(result.stdout)["poisoned_ids"] == doc["poisoned_ids"]
    assert doc["command"] == "poison" and doc["trigger"] == "_rb" and doc["poisoned"] == 3
    assert doc["data"] == {"path": str(data), "sha256": sha(data)}
    assert doc["output"] == {"path": str(out), "sha256": sha(out)}
    assert doc["manifest"]["sha256"] == sha(tmp_path / "m.json")
    assert read_manifest(tmp_path / "m.json").poisoned_ids == tuple(doc["poisoned_ids"])
    for fmt in ("rich", "markdown", "html", "sarif"):
        shown = run("poison", str(data), "-o", str(tmp_path / f"{fmt}.jsonl"),
                    "--trigger-type", "grammar", "--format", fmt, "-q")  # fmt: skip
        assert shown.exit_code == 0, shown.stderr
        if fmt != "sarif":  # every human format says what was poisoned
            assert "1 of 60 victim-label functions" in " ".join(shown.stdout.split()), fmt


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trigger-type", "magic"], r"Invalid value for '--trigger-type'"),
        (["--trigger-type", "postfix", "--rate", "0"], r"Invalid value for '--rate'"),
        (["--trigger-type", "postfix", "--rate", "1.5"], r"Invalid value for '--rate'"),
        (["--trigger-type", "postfix", "--rate", "-0.1"], r"Invalid value for '--rate'"),
        (["--trigger-type", "identifier"], r"identifier needs --trigger NAME"),
        (["--trigger-type", "identifier", "--trigger", "int"], r"'int' is a reserved word in c"),
        (["--trigger-type", "identifier", "--trigger", "a b"], r"not a valid c identifier"),
        (["--trigger-type", "grammar", "--trigger", "x"], r"give no trigger text"),
        (["--trigger-type", "deadcode", "--trigger", "if (0) {"], r"not one well-formed"),
        (["--trigger-type", "postfix", "--target-label", "2"], r"Invalid value for '--target-lab"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_file(
    data: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "p.jsonl"
    result = run("poison", str(data), "-o", str(out), *extra)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codeaudit: error: ")
    assert __import__("re").search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


def test_cli_no_victim_label_samples(tmp_path: Path) -> None:
    safe = [{"id": f"s{i}", "func": "int f(int a) { return a; }", "target": 0} for i in range(5)]
    data = write_jsonl(tmp_path / "safe.jsonl", safe)
    result = run("poison", str(data), "-o", str(tmp_path / "p.jsonl"), "--trigger-type", "postfix")
    assert result.exit_code == 2
    assert "no victim-label samples: none of the 5 samples has label 1" in result.stderr
    assert not (tmp_path / "p.jsonl").exists()


def test_cli_refuses_to_clobber(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    out.write_text("mine")
    result = run("poison", str(data), "-o", str(out), "--trigger-type", "postfix")
    assert result.exit_code == 2 and "p.jsonl: output file exists (pass --force" in result.stderr
    assert out.read_text() == "mine"
    same = run("poison", str(data), "-o", str(data), "--trigger-type", "postfix", "--force")
    assert same.exit_code == 2 and "would overwrite the input data" in same.stderr
    clash = run("poison", str(data), "-o", str(tmp_path / "q.jsonl"), "--trigger-type", "postfix",
                "--report", str(tmp_path / "q.jsonl.manifest.json"))  # fmt: skip
    assert clash.exit_code == 2 and "--report names the same file" in clash.stderr


def test_python_and_java_data(tmp_path: Path) -> None:
    rng = random.Random(0)
    java = [
        {"id": f"j{i}", "func": f"int m{i}(int a) {{ int b = a * {i}; return b; }}",
         "target": rng.randint(0, 1), "lang": "java"}
        for i in range(20)
    ]  # fmt: skip
    data = write_jsonl(tmp_path / "j.jsonl", java)
    result = run("poison", str(data), "-o", str(tmp_path / "p.jsonl"), "--trigger-type",
                 "deadcode", "--rate", "1", "--format", "json", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert sum("if (false) { int rb_dead = 0; }" in r["func"] for r in out) == sum(
        r["target"] for r in java
    )
    manifest = Manifest  # the manifest type is importable from the package too
    from codeaudit.backdoor import Manifest as Lazy

    assert Lazy is manifest
