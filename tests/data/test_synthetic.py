"""Tests for the synthetic labelled-C-function generator and examples/make_dataset.py."""

from __future__ import annotations

import collections
import difflib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_c

from codeaudit.data.synthetic import CWE_TEMPLATES, generate

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "make_dataset.py"
MARKERS = re.compile(r"bad|good|safe|vuln|fix|flaw", re.IGNORECASE)
KEYS = {"id", "func", "target", "cwe", "pair", "lang"}
REQUIRED = {"CWE-120", "CWE-121", "CWE-134", "CWE-190", "CWE-193", "CWE-416", "CWE-476"}


@pytest.fixture(scope="module")
def parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    """A few hundred records from both modes, shared by the slower checks."""
    return generate(330, 7) + generate(330, 8, paired=True)


# ---- shape, balance, uniqueness ---------------------------------------------------------------


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 50, 101])
def test_balanced_labels_and_schema(n: int, paired: bool) -> None:
    records = generate(n, 3, paired=paired)
    assert len(records) == n
    counts = collections.Counter(r["target"] for r in records)
    assert set(counts) <= {0, 1}
    assert abs(counts[1] - counts[0]) == n % 2
    for r in records:
        assert set(r) == KEYS
        assert r["lang"] == "c"
        assert r["cwe"] in CWE_TEMPLATES
        assert isinstance(r["func"], str) and r["func"].strip()
        assert isinstance(r["id"], str) and isinstance(r["pair"], str)


def test_required_patterns_are_listed() -> None:
    assert set(CWE_TEMPLATES) >= REQUIRED
    assert len(set(CWE_TEMPLATES)) == len(CWE_TEMPLATES)


@pytest.mark.parametrize("paired", [False, True])
def test_ids_and_funcs_unique(paired: bool) -> None:
    records = generate(500, 11, paired=paired)
    assert len({r["id"] for r in records}) == len(records)
    assert len({r["func"] for r in records}) == len(records)
    assert [r["id"] for r in records] == [f"synth-11-{i}" for i in range(len(records))]


def test_labels_spread_over_templates() -> None:
    records = generate(440, 2)
    cells = collections.Counter((r["cwe"], r["target"]) for r in records)
    assert set(cells) == {(c, t) for c in CWE_TEMPLATES for t in (0, 1)}
    assert max(cells.values()) - min(cells.values()) <= 1


@pytest.mark.parametrize("paired", [False, True])
def test_every_template_appears(paired: bool) -> None:
    records = generate(4 * len(CWE_TEMPLATES), 5, paired=paired)
    assert {r["cwe"] for r in records} == set(CWE_TEMPLATES)


# ---- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("paired", [False, True])
def test_same_seed_same_output(paired: bool) -> None:
    assert generate(120, 42, paired=paired) == generate(120, 42, paired=paired)


def test_different_seed_different_functions() -> None:
    a = {r["func"] for r in generate(120, 1)}
    b = {r["func"] for r in generate(120, 2)}
    assert len(a & b) < 5


def test_global_random_state_untouched() -> None:
    random.seed(1234)
    state = random.getstate()
    generate(40, 9)
    generate(40, 9, paired=True)
    assert random.getstate() == state


def test_paired_and_unpaired_differ() -> None:
    assert {r["func"] for r in generate(40, 9, paired=True)}.isdisjoint(
        r["func"] for r in generate(40, 9)
    )


@pytest.mark.parametrize("bad_n", [-1, -100])
def test_negative_n_rejected(bad_n: int) -> None:
    with pytest.raises(ValueError):
        generate(bad_n)


@pytest.mark.parametrize("bad", [1.5, "10", None, True])
def test_non_int_n_rejected(bad: object) -> None:
    with pytest.raises(TypeError):
        generate(bad)  # type: ignore[arg-type]


# ---- the C text -------------------------------------------------------------------------------


def test_every_function_parses_as_one_definition(parser, sample) -> None:
    for r in sample:
        tree = parser.parse(r["func"].encode())
        root = tree.root_node
        assert not root.has_error, r["func"]
        kinds = [child.type for child in root.named_children if child.type != "comment"]
        assert kinds == ["function_definition"], r["func"]
        assert "#include" not in r["func"]


def test_no_marker_words(sample) -> None:
    hits = [r["func"] for r in sample if MARKERS.search(r["func"])]
    assert not hits, hits[:1]


def test_surface_variety(sample) -> None:
    funcs = [r["func"] for r in sample]
    unpaired = [r["func"] for r in sample if r["id"].startswith("synth-7-")]
    names = {re.search(r"(\w+)\(", f).group(1) for f in unpaired}
    assert len(names) > len(unpaired) * 0.8  # function names rarely repeat
    assert any(re.search(r"\b[a-z]+[A-Z]\w*\(", f) for f in funcs)  # camelCase
    assert any(re.search(r"\b[a-z]+_[a-z]\w*\(", f) for f in funcs)  # snake_case
    assert any("\t" in f for f in funcs) and any("\n    " in f for f in funcs)
    assert any(") {\n" in f for f in funcs) and any(")\n{" in f for f in funcs)
    assert any("/*" in f or "//" in f for f in funcs)
    sizes = {m for f in funcs for m in re.findall(r"\w+\[(\d+)\];", f)}
    assert len(sizes) >= 8


# ---- pairing ----------------------------------------------------------------------------------


def test_paired_groups_hold_one_of_each_label() -> None:
    records = generate(300, 4, paired=True)
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for r in records:
        groups[r["pair"]].append(r)
    assert len(groups) == 150
    for members in groups.values():
        assert sorted(m["target"] for m in members) == [0, 1]
        assert len({m["cwe"] for m in members}) == 1


def test_paired_odd_leaves_one_single() -> None:
    records = generate(9, 4, paired=True)
    sizes = collections.Counter(collections.Counter(r["pair"] for r in records).values())
    assert sizes == {2: 4, 1: 1}


def test_unpaired_pair_ids_unique() -> None:
    records = generate(300, 4)
    assert len({r["pair"] for r in records}) == 300


def test_paired_variants_share_most_code() -> None:
    records = generate(220, 6, paired=True)
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for r in records:
        groups[r["pair"]].append(r["func"])
    ratios = [
        difflib.SequenceMatcher(None, a.splitlines(), b.splitlines()).ratio()
        for a, b in groups.values()
    ]
    assert min(ratios) > 0.3
    assert sum(ratios) / len(ratios) > 0.8
    # ... and share the signature line: same function, only the body differs
    for a, b in groups.values():
        assert a.split("(", 1)[0] == b.split("(", 1)[0]


# ---- the label follows the code, not a keyword -------------------------------------------------

_FORMAT_ARG = {"printf": 0, "fprintf": 1, "dprintf": 1, "syslog": 1, "snprintf": 2, "sprintf": 1}


def _non_literal_format_calls(parser: tree_sitter.Parser, src: str) -> int:
    """How many printf-family calls take something other than a string literal as format."""
    found = 0
    stack = [parser.parse(src.encode()).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "call_expression":
            continue
        name = node.child_by_field_name("function")
        if name is None or name.text.decode() not in _FORMAT_ARG:
            continue
        args = node.child_by_field_name("arguments").named_children
        pos = _FORMAT_ARG[name.text.decode()]
        if len(args) > pos and args[pos].type not in ("string_literal", "concatenated_string"):
            found += 1
    return found


def test_format_string_label_matches_code(parser, sample) -> None:
    for r in sample:
        calls = _non_literal_format_calls(parser, r["func"])
        if r["cwe"] == "CWE-134":
            assert (calls > 0) == (r["target"] == 1), r["func"]
        else:
            assert calls == 0, r["func"]


def test_off_by_one_loops_use_le_only_when_vulnerable() -> None:
    pattern = re.compile(r"for ?\(\w+ = 0; \w+ (<=?) ")
    seen = collections.Counter()
    for r in generate(440, 12, paired=True):
        if r["cwe"] != "CWE-193":
            continue
        for op in pattern.findall(r["func"]):
            seen[(op, r["target"])] += 1
    assert seen[("<=", 1)] > 0 and seen[("<", 0)] > 0
    assert seen[("<=", 0)] == 0


# ---- examples/make_dataset.py -----------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_make_dataset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = _run(str(out), "--n", "80", "--seed", "3", "--paired")
    assert proc.returncode == 0, proc.stderr
    files = {name: out / f"{name}.jsonl" for name in ("train", "val", "holdout")}
    parts = {name: _read(path) for name, path in files.items()}
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files.values())
    records = [r for part in parts.values() for r in part]
    assert sorted(records, key=lambda r: r["id"]) == sorted(
        generate(80, 3, paired=True), key=lambda r: r["id"]
    )
    pairs = {name: {r["pair"] for r in part} for name, part in parts.items()}
    assert not pairs["train"] & pairs["val"]
    assert not pairs["train"] & pairs["holdout"]
    assert not pairs["val"] & pairs["holdout"]
    assert [len(pairs[n]) for n in ("train", "val", "holdout")] == [24, 8, 8]

    # A second run refuses to overwrite and leaves the files alone.
    before = {name: path.read_bytes() for name, path in files.items()}
    proc = _run(str(out), "--n", "80", "--seed", "4")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--force" in proc.stderr
    assert {name: path.read_bytes() for name, path in files.items()} == before

    # --force overwrites.
    proc = _run(str(out), "--n", "50", "--seed", "4", "--force")
    assert proc.returncode == 0, proc.stderr
    assert sum(len(_read(path)) for path in files.values()) == 50
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files.values())


def test_make_dataset_unpaired_split(tmp_path: Path) -> None:
    proc = _run(str(tmp_path), "--n", "100")
    assert proc.returncode == 0, proc.stderr
    sizes = [len(_read(tmp_path / f"{n}.jsonl")) for n in ("train", "val", "holdout")]
    assert sizes == [60, 20, 20]


@pytest.mark.parametrize(
    "args",
    [
        ["--n", "abc"],
        ["--n", "3"],
        ["--seed", "x"],
        ["--bogus"],
        [],
    ],
)
def test_make_dataset_bad_arguments(tmp_path: Path, args: list[str]) -> None:
    argv = [str(tmp_path / "o"), *args] if args else []
    proc = _run(*argv)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "o").exists()


def test_make_dataset_outdir_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    proc = _run(str(target))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def _return_type_and_body(parser: tree_sitter.Parser, src: str):
    root = parser.parse(src.encode()).root_node
    fn = next(c for c in root.named_children if c.type == "function_definition")
    declarator = fn.child_by_field_name("declarator")
    is_void = fn.child_by_field_name("type").text == b"void" and declarator.type != (
        "pointer_declarator"
    )
    return is_void, fn.child_by_field_name("body")


def test_returns_match_the_return_type(parser, sample) -> None:
    for r in sample:
        is_void, body = _return_type_and_body(parser, r["func"])
        stack, returns = [body], []
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.type == "return_statement":
                returns.append(node)
        if is_void:
            assert all(node.named_child_count == 0 for node in returns), r["func"]
        else:
            assert returns and all(node.named_child_count == 1 for node in returns), r["func"]
            statements = [c for c in body.named_children if c.type != "comment"]
            assert statements[-1].type == "return_statement", r["func"]
