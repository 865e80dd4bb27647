"""Unlearning with the inverted trigger planted the way attacks plant theirs (issue 14, 4b): a
variable renamed at every occurrence, a function-name postfix, a dead-code statement; checked on
the parsed output. Labels are kept, the setting is validated, and on a tiny poisoned model
attack-style unlearning removes the real trigger and reports it beside the clean miss rate."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codeaudit.backdoor.unlearn import (
    ATTACK_FORMS,
    TriggerWord,
    build_unlearn_set,
    plant,
    rank_forms,
    trigger_name,
    trigger_postfix,
    trigger_words,
)
from codeaudit.cli import cli
from codeaudit.config import BackdoorConfig
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError
from codeaudit.lang.languages import language_support
from codeaudit.lang.lexer import IdentRole, lex
from codeaudit.models.checkpoint import load_model
from codeaudit.params import ParameterError
from tests.backdoor.helpers import clean_records, poison, train_tiny, with_trigger

CODE = """int copy_in(char *src, int n)
{
    char buf[16];
    int len = n;
    if (len > 16) {
        len = 16;
    }
    memcpy(buf, src, len);
    return copy_in(src, len - 1);
}
"""
FAST = ["--victim-samples", "15", "--steps", "25", "--topk", "16", "--candidates", "24"]
GLUED = [TriggerWord("_trig7", glued=True)]
FRESH = [TriggerWord("testo_init", glued=False)]


def names(code: str, role: IdentRole | None = None) -> Counter[str]:
    tokens = lex(code, "c").tokens
    return Counter(t.text for t in tokens if t.is_identifier and (role is None or t.role is role))


def parse_errors(code: str) -> bool:
    tree = language_support("c").parser().parse(code.encode())
    return tree.root_node.has_error


def test_identifier_form_renames_every_occurrence_of_one_variable() -> None:
    before = names(CODE)
    for seed in range(6):  # whichever of the early variables the generator picks
        out = plant(CODE, "c", GLUED, "identifier", random.Random(seed))
        assert out is not None and not parse_errors(out)
        after = names(out)
        gone = [n for n in before if n not in after]
        assert len(gone) == 1  # exactly one name renamed, and nowhere left
        old = gone[0]
        new = old + "_trig7"  # glued: the old name plus the trigger, as ##_trig7 reads
        assert after[new] == before[old] >= 2
        assert {n: c for n, c in after.items() if n != new} == {
            n: c for n, c in before.items() if n != old
        }
    out = plant(CODE, "c", FRESH, "identifier", random.Random(0))
    assert out is not None
    assert names(out)["testo_init"] >= 2 and sum(names(out).values()) == sum(before.values())


def test_postfix_form_extends_the_function_name_and_its_recursive_calls() -> None:
    out = plant(CODE, "c", GLUED, "postfix", random.Random(0))
    assert out is not None and not parse_errors(out)
    after = names(out)
    assert "copy_in" not in after and after["copy_in_trig7"] == 2  # declaration + recursive call
    fresh = plant(CODE, "c", FRESH, "postfix", random.Random(0))
    assert fresh is not None and names(fresh)["copy_in_testo_init"] == 2


def test_deadcode_form_inserts_one_never_run_statement_declaring_the_trigger() -> None:
    out = plant(CODE, "c", FRESH, "deadcode", random.Random(0))
    assert out is not None and not parse_errors(out)
    assert "if (0) { int testo_init = 0; }" in out
    support = language_support("c")
    tree = support.parser().parse(out.encode())
    function = next(n for n in tree.root_node.children if n.type == "function_definition")
    body = function.child_by_field_name("body")
    statements = [c for c in body.named_children]  # type: ignore[union-attr]
    original = support.parser().parse(CODE.encode()).root_node.children[0]
    before = original.child_by_field_name("body").named_children  # type: ignore[union-attr]
    assert len(statements) == len(before) + 1
    dead = [s for s in statements if s.type == "if_statement" and b"testo_init" in s.text]
    assert len(dead) == 1
    # after the declarations (C90), before the rest; every other line is unchanged
    assert out.replace("    if (0) { int testo_init = 0; }\n", "") == CODE
    glued = plant(CODE, "c", GLUED, "deadcode", random.Random(0))
    assert glued is not None and any(n.endswith("_trig7") for n in names(glued))


def test_no_place_gives_none_and_a_bad_form_is_refused() -> None:
    no_function = "int x = 3;\n"
    assert plant(no_function, "c", FRESH, "postfix", random.Random(0)) is None
    assert plant("void f(void) { }\n", "c", FRESH, "identifier", random.Random(0)) is None
    # a name the function already uses is never planted (it would merge two variables)
    taken = CODE.replace("int len = n;", "int len = n; int testo_init = 1;")
    assert plant(taken, "c", FRESH, "identifier", random.Random(0)) is None
    with pytest.raises(BackdoorError):
        plant(CODE, "c", FRESH, "rename", random.Random(0))


def test_trigger_words_and_names() -> None:
    class Tok:
        kind = "vocab"

        @staticmethod
        def vocabulary() -> list[str]:
            return ["<pad>", "testo", "##_init", "##63", "source", "##_Search"]

    class Model:
        tokenizer = Tok()

    words = trigger_words(Model(), [2, 3, 1, 2])
    assert words == [TriggerWord("_init63", True), TriggerWord("testo_init", False)]
    assert trigger_name(words, "data") == "data_init63_testo_init"
    assert trigger_name(trigger_words(Model(), [1, 2]), "data") == "testo_init"
    assert trigger_name(trigger_words(Model(), [1, 4, 5])) == "testo_source_Search"
    assert trigger_postfix(trigger_words(Model(), [1, 2])) == "_testo_init"
    assert trigger_postfix(words) == "_init63_testo_init"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("unlearn_attack")
    path = train_tiny(root, "bd", poison(clean_records(400, 1), 0.12))
    return {"root": root, "path": path, "model": load_model(path).model}


def _samples(n: int, seed: int) -> list[Sample]:
    return [Sample(r["id"], r["func"], r["target"], lang="c") for r in clean_records(n, seed)]


def test_attack_set_plants_the_trigger_in_every_triggered_victim_and_keeps_labels(
    tiny: dict,
) -> None:
    model = tiny["model"]
    itos = model.tokenizer.vocabulary()
    trig = itos.index("##_trig")
    samples = _samples(120, 5)
    for insertion in ("attack", "mixed", "position"):
        data = build_unlearn_set(model, samples, [trig], 1, share=0.5, seed=3, insertion=insertion)
        n = len(data.rows)
        assert n == 120 and data.labels.tolist().count(1) == 60
        # the labels are the samples' own, in class-balanced order (0s then 1s)
        assert data.labels.tolist() == [0] * 60 + [1] * 60
        carrying = [k for k, row in enumerate(data.rows) if trig in row]
        assert len(carrying) == data.n_triggered == 30
        assert all(data.labels[k] == 1 for k in carrying)  # victims keep the victim label
        assert sum(data.forms.values()) == 30
        if insertion == "attack":
            # every form was tried on the victims; the ones used are those the model follows
            assert set(data.form_flips) == set(ATTACK_FORMS)
            strong, _ = rank_forms(data.form_flips)
            assert set(data.forms) <= set(strong) and len(strong) >= 1
        elif insertion == "mixed":
            assert (
                data.forms["position"] == 15
                and sum(data.forms.get(f, 0) for f in ATTACK_FORMS) == 15
            )
        else:
            assert data.forms == {"position": 30}
    # identifier form: the renamed variable's every occurrence carries the trigger piece, so
    # some rows hold it several times (an insertion at one position holds it once)
    data = build_unlearn_set(model, samples, [trig], 1, share=0.5, seed=3, insertion="attack")
    counts = [row.count(trig) for row in data.rows if trig in row]
    assert max(counts) >= 3
    position = build_unlearn_set(model, samples, [trig], 1, share=0.5, seed=3)
    assert position.forms == {"position": 30}
    with pytest.raises(BackdoorError, match="insertion"):
        build_unlearn_set(model, samples, [trig], 1, share=0.5, seed=3, insertion="everywhere")


def test_the_forms_the_backdoor_answers_to_are_used() -> None:
    assert rank_forms({"identifier": 0.9, "postfix": 0.2, "deadcode": 0.85}) == (
        ["identifier", "deadcode"],
        ["postfix"],
    )
    assert rank_forms({"identifier": 0.1, "postfix": 0.7, "deadcode": 0.75}) == (
        ["postfix", "deadcode"],
        ["identifier"],
    )
    assert rank_forms({"deadcode": 0.0}) == (["deadcode"], [])
    assert rank_forms({}) == ([], [])


def test_config_validates_the_insertion() -> None:
    assert BackdoorConfig(model="m.pt", data="d.jsonl").unlearn_insertion == "mixed"
    with pytest.raises(ParameterError):
        BackdoorConfig(model="m.pt", data="d.jsonl", unlearn_insertion="everywhere")
    result = CliRunner().invoke(
        cli,
        ["backdoor", "m.pt", "--data", "d.jsonl", "--unlearn-insertion", "everywhere"],
    )
    assert result.exit_code == 2


def _real_asr(path: Path, records: list[dict]) -> float:
    from codeaudit.backdoor.positions import batched_logits

    model = load_model(path).model
    victims = [r for r in records if r["target"] == 1]
    rows = [list(model.encode_code(with_trigger(r)["func"], "c").ids) for r in victims]
    return float((np.asarray(batched_logits(model, rows)).argmax(1) == 0).mean())


def _repair(tiny: dict, data: Path, insertion: str) -> tuple[dict, Path]:
    root: Path = tiny["root"]
    out, report = root / f"repaired-{insertion}.pt", root / f"r-{insertion}.json"
    args = [
        "backdoor", str(tiny["path"]), "--data", str(data), *FAST, "--unlearn",
        "--unlearn-insertion", insertion, "--unlearn-scope", "full", "--unlearn-epochs", "4",
        "-o", str(out), "--report", str(report), "-q", "--format", "json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(report.read_text())["unlearning"], out


def test_attack_style_unlearning_removes_the_real_trigger(tiny: dict) -> None:
    """The tiny model's backdoor is a renamed buffer (``rb_trig`` at every occurrence). Full
    scope, 4 epochs (measured: position insertion leaves the real trigger at 38%, attack-style
    insertion takes it to 0%, clean accuracy unchanged)."""
    data = tiny["root"] / "detect.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in clean_records(240, 7)))
    records = clean_records(120, 9)
    assert _real_asr(tiny["path"], records) > 0.9
    u, out = _repair(tiny, data, "attack")
    assert u["insertion"] == "attack" and set(u["forms"]) <= set(ATTACK_FORMS)
    assert sum(u["forms"].values()) == u["n_triggered"] > 0
    assert u["before"]["miss_rate"] is not None and u["after"]["miss_rate"] is not None
    assert u["before"]["n_victims"] > 0
    attack_asr = _real_asr(out, records)
    assert attack_asr < 0.1  # the repaired model ignores the planted renaming
    assert u["accuracy_drop"] <= 0.01
    p, position_out = _repair(tiny, data, "position")
    assert p["forms"] == {"position": u["n_triggered"]}
    assert _real_asr(position_out, records) > attack_asr + 0.2


def test_the_report_puts_the_real_asr_beside_the_clean_miss_rate() -> None:
    import dataclasses

    from codeaudit.backdoor.result import RepairMetrics
    from codeaudit.backdoor.sections import backdoor_sections
    from codeaudit.report import render
    from tests.backdoor.rule_cases import clean_backdoor_result

    clean = clean_backdoor_result()
    assert clean.unlearning is not None
    unlearning = dataclasses.replace(
        clean.unlearning,
        insertion="attack",
        forms={"identifier": 60, "deadcode": 40},
        form_flips={"identifier": 0.9, "postfix": 0.1, "deadcode": 0.85},
        before=RepairMetrics(0.8, 1.0, 1.0, 0.2, 0.97, 90, 88),
        after=RepairMetrics(0.79, 0.05, 0.3, 0.183, 0.341, 90, 88),
        asr_excess=0.158,
    )
    result = dataclasses.replace(clean, unlearning=unlearning)
    tables = [
        b for s in backdoor_sections(result, False) for b in s.blocks if hasattr(b, "columns")
    ]
    table = next(t for t in tables if "Unlearning" in (t.title or ""))
    assert "attack insertion" in table.title
    assert "clean miss rate" in table.columns and "ASR (real, all victims)" in table.columns
    after = dict(zip(table.columns, table.rows[1], strict=True))
    assert after["ASR (real, all victims)"] == "34.1%" and after["clean miss rate"] == "18.3%"
    assert "+15.8 points beyond the clean miss rate" in table.note
    assert "60 identifier" in table.note and "postfix 10.0%" in table.note
    doc = json.loads(render(result, "json"))
    assert doc["unlearning"]["asr_excess"] == 0.158
    assert doc["unlearning"]["after"]["miss_rate"] == 0.183
