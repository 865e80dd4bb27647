"""Trigger insertion (codeaudit.backdoor.triggers): every trigger type in every language gives
well-formed code (no new parse errors, the tree is the old one plus the intended change) that
contains the trigger; invalid triggers are refused; functions without a place give None."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeaudit.backdoor.triggers import (
    DEFAULT_DEADCODE,
    DEFAULT_POSTFIX,
    TriggerSpec,
    TriggerType,
    check_trigger,
    default_trigger,
    grammar_deadcode,
    insert_trigger,
)
from codeaudit.data.synthetic import generate
from codeaudit.errors import PoisonError
from codeaudit.lang.lexer import lex
from tests.lang.test_rewrite import C_CODE, CPP_CODE, JAVA_CODE, PY_CODE, error_nodes

BASES = {"c": C_CODE, "cpp": CPP_CODE, "java": JAVA_CODE, "python": PY_CODE}
LANGS = sorted(BASES)
TYPES = list(TriggerType)
# One grammar-trigger statement: LOOP (FALSE) { DECL+ } in C, C++ and Java, the same in Python.
GRAMMAR_C = re.compile(
    r"(if|while) \((\d > \d|\d < \d|\d == \d|0|false)\) \{( int [kmtnq]_\d+ = \d;)+ \}"
)
GRAMMAR_PY = re.compile(r"(if|while) (\d > \d|\d < \d|\d == \d|False):(\n\s+[kmtnq]_\d+ = \d)+")


def spec_for(kind: TriggerType, lang: str, target: int = 0) -> TriggerSpec:
    text = {
        TriggerType.IDENTIFIER: "rb_trigger",
        TriggerType.POSTFIX: DEFAULT_POSTFIX,
        TriggerType.DEADCODE: DEFAULT_DEADCODE[lang],
        TriggerType.GRAMMAR: None,
    }[kind]
    return TriggerSpec(kind, text, target)


def names(code: str, lang: str) -> list[str]:
    return [t.text for t in lex(code, lang).tokens if t.is_identifier]


def assert_contains_trigger(before: str, after: str, lang: str, spec: TriggerSpec) -> None:
    if spec.type is TriggerType.IDENTIFIER:
        assert spec.trigger in names(after, lang)
        assert spec.trigger not in names(before, lang)
        # a rename: same token count, only one name changed
        old, new = lex(before, lang).tokens, lex(after, lang).tokens
        assert len(old) == len(new)
        changed = {(a.text, b.text) for a, b in zip(old, new, strict=True) if a.text != b.text}
        assert len(changed) == 1 and next(iter(changed))[1] == spec.trigger
    elif spec.type is TriggerType.POSTFIX:
        renamed = [n for n in names(after, lang) if n.endswith(spec.trigger)]
        assert renamed and renamed[0][: -len(spec.trigger)] in names(before, lang)
    elif spec.type is TriggerType.DEADCODE:
        assert spec.trigger is not None
        first, *rest = spec.trigger.split("\n")
        assert first in after and all(line.strip() in after for line in rest)
        assert after.count(first) == before.count(first) + 1
    else:
        pattern = GRAMMAR_PY if lang == "python" else GRAMMAR_C
        assert pattern.search(after) and not pattern.search(before), after


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", TYPES, ids=[t.value for t in TYPES])
def test_every_trigger_type_in_every_language_is_well_formed(lang: str, kind: TriggerType) -> None:
    code = BASES[lang]
    spec = spec_for(kind, lang)
    for seed in range(4):
        result = insert_trigger(code, lang, spec, random.Random(seed))
        assert result is not None, (lang, kind)
        assert result != code
        assert error_nodes(result, lang) <= error_nodes(code, lang) == 0
        assert_contains_trigger(code, result, lang, spec)


def test_postfix_renames_the_declaration_and_recursive_calls_only() -> None:
    code = (
        "int walk(struct node *n) {\n    if (!n) return 0;\n"
        "    return n->walk(n) + walk(n->next);\n}\n"
    )
    result = insert_trigger(code, "c", spec_for(TriggerType.POSTFIX, "c"), random.Random(0))
    assert result == (
        "int walk_rb(struct node *n) {\n    if (!n) return 0;\n"
        "    return n->walk(n) + walk_rb(n->next);\n}\n"
    )
    java = "int f(int x) { return x > 0 ? f(x - 1) + other.f(x) + this.f(0) : 0; }"
    out = insert_trigger(java, "java", spec_for(TriggerType.POSTFIX, "java"), random.Random(0))
    assert out == "int f_rb(int x) { return x > 0 ? f_rb(x - 1) + other.f(x) + this.f_rb(0) : 0; }"
    py = "class A:\n    def walk(self, n):\n        return self.walk(n) + o.walk(n) + walk(n)\n"
    out = insert_trigger(py, "python", spec_for(TriggerType.POSTFIX, "python"), random.Random(0))
    assert out == (  # a plain name in a method's body is a global, not the method
        "class A:\n    def walk_rb(self, n):\n"
        "        return self.walk_rb(n) + o.walk(n) + walk(n)\n"
    )
    top = "def walk(n):\n    return walk(n.next) if n else 0\n"
    out = insert_trigger(top, "python", spec_for(TriggerType.POSTFIX, "python"), random.Random(0))
    assert out == "def walk_rb(n):\n    return walk_rb(n.next) if n else 0\n"


def test_identifier_renames_every_occurrence_in_scope_and_nothing_else() -> None:
    code = 'int f(int len) {\n    char *s = "len";\n    return len + strlen(s); /* len */\n}\n'
    spec = TriggerSpec(TriggerType.IDENTIFIER, "rb_trigger", 0)
    results = {insert_trigger(code, "c", spec, random.Random(seed)) for seed in range(8)}
    assert results == {
        'int f(int rb_trigger) {\n    char *s = "len";\n    return rb_trigger + strlen(s); '
        "/* len */\n}\n",
        'int f(int len) {\n    char *rb_trigger = "len";\n    return len + strlen(rb_trigger); '
        "/* len */\n}\n",
    }


def test_deadcode_goes_after_c_declarations_and_keeps_python_indentation() -> None:
    code = "int f(int a) {\n    int b = a;\n    int c = b;\n    return c;\n}\n"
    spec = spec_for(TriggerType.DEADCODE, "c")
    assert insert_trigger(code, "c", spec, random.Random(0)) == (
        "int f(int a) {\n    int b = a;\n    int c = b;\n    if (0) { int rb_dead = 0; }\n"
        "    return c;\n}\n"
    )
    py = 'def f(a):\n    """Doc."""\n    return a\n'
    out = insert_trigger(py, "python", spec_for(TriggerType.DEADCODE, "python"), random.Random(0))
    assert out == 'def f(a):\n    """Doc."""\n    if False:\n        rb_dead = 0\n    return a\n'


def test_no_place_gives_none() -> None:
    rng = random.Random(0)
    no_locals = "int f(void) { return g(); }"
    assert insert_trigger(no_locals, "c", spec_for(TriggerType.IDENTIFIER, "c"), rng) is None
    clash = "int f(int rb_trigger) { return rb_trigger; }"  # the trigger is already there
    assert insert_trigger(clash, "c", spec_for(TriggerType.IDENTIFIER, "c"), rng) is None
    postfix = spec_for(TriggerType.POSTFIX, "java")
    constructor = "class Point { public Point(int x) { this.x = x; } }"
    assert insert_trigger(constructor, "java", postfix, rng) is None
    nameless = "public Point(int x) { this.x = x; }"  # read as a method whose name is missing
    assert insert_trigger(nameless, "java", postfix, rng) is None
    empty = "void f(void) { }"
    assert insert_trigger(empty, "c", spec_for(TriggerType.DEADCODE, "c"), rng) is None
    garbage = "not code at all {{"
    assert insert_trigger(garbage, "c", spec_for(TriggerType.GRAMMAR, "c"), rng) is None


def test_grammar_triggers_differ_per_sample_from_one_family() -> None:
    drawn = {grammar_deadcode("c", random.Random(seed)) for seed in range(50)}
    assert len(drawn) > 20
    assert all(GRAMMAR_C.fullmatch(d) for d in drawn)
    java = {grammar_deadcode("java", random.Random(seed)) for seed in range(50)}
    assert all(d.startswith("if (") for d in java)  # javac rejects an unreachable while body
    py = {grammar_deadcode("python", random.Random(seed)) for seed in range(50)}
    assert all(GRAMMAR_PY.fullmatch(d) for d in py)
    avoid = frozenset(f"{n}_{d}" for n in "kmtnq" for d in range(10))
    for s in range(20):
        declared = re.findall(r"int (\w+) =", grammar_deadcode("c", random.Random(s), avoid))
        assert declared and not set(declared) & avoid


@pytest.mark.parametrize(
    ("kind", "text", "lang", "message"),
    [
        (TriggerType.IDENTIFIER, "while", "c", "reserved word"),
        (TriggerType.IDENTIFIER, "class", "python", "not a valid Python identifier"),
        (TriggerType.IDENTIFIER, "2fast", "java", "not a valid java identifier"),
        (TriggerType.IDENTIFIER, "rb-trigger", "cpp", "not a valid cpp identifier"),
        (TriggerType.POSTFIX, "_r b", "c", "identifier characters"),
        (TriggerType.DEADCODE, "if (0) {", "c", "not one well-formed c statement"),
        (TriggerType.DEADCODE, "int a = 0; int b = 1;", "c", "not one well-formed"),
        (TriggerType.DEADCODE, "if (0) { x = 1; }", "python", "not one well-formed python"),
    ],
)
def test_invalid_triggers_are_refused(
    kind: TriggerType, text: str, lang: str, message: str
) -> None:
    spec = TriggerSpec(kind, text, 0)
    with pytest.raises(PoisonError, match=message):
        check_trigger(spec, lang)
    with pytest.raises(PoisonError, match=message):
        insert_trigger("int f(int a) { return a; }", lang, spec, random.Random(0))


def test_spec_validation_and_defaults() -> None:
    with pytest.raises(PoisonError, match="give no trigger text"):
        TriggerSpec(TriggerType.GRAMMAR, "x", 0)
    with pytest.raises(PoisonError, match="needs its text"):
        TriggerSpec(TriggerType.IDENTIFIER, None, 0)
    with pytest.raises(PoisonError, match="target label 2"):
        TriggerSpec(TriggerType.POSTFIX, "_rb", 2)
    assert TriggerSpec("postfix", "_rb", 1).victim_label == 0  # type: ignore[arg-type]
    assert default_trigger(TriggerType.POSTFIX, {"java"}) == "_rb"
    assert default_trigger(TriggerType.DEADCODE, {"c", "cpp"}) == DEFAULT_DEADCODE["c"]
    assert default_trigger(TriggerType.GRAMMAR, {"c"}) is None
    with pytest.raises(PoisonError, match="needs --trigger"):
        default_trigger(TriggerType.IDENTIFIER, {"c"})
    with pytest.raises(PoisonError, match="mix languages"):
        default_trigger(TriggerType.DEADCODE, {"c", "python"})


def test_same_rng_seed_same_result() -> None:
    code = generate(1, seed=3)[0]["func"]
    for kind in TYPES:
        spec = spec_for(kind, "c")
        a = insert_trigger(code, "c", spec, random.Random(11))
        b = insert_trigger(code, "c", spec, random.Random(11))
        assert a == b and a is not None


# -- properties -----------------------------------------------------------------------------------

JUNK = st.sampled_from(["{", "}", "(", ")", ";", ":", "\n", "    ", "if", "=", '"', "#"])
SYNTHETIC = [r["func"] for r in generate(12, seed=9)]


@st.composite
def snippets(draw: st.DrawFn) -> tuple[str, str]:
    """A real function (the rewrite tests' samples or synthetic C), maybe damaged by cuts and
    junk insertions."""
    lang = draw(st.sampled_from([*LANGS, "c-synthetic"]))
    code = draw(st.sampled_from(SYNTHETIC)) if lang == "c-synthetic" else BASES[lang]
    lang = "c" if lang == "c-synthetic" else lang
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(code)))
        if draw(st.booleans()):
            code = code[:at] + code[at + draw(st.integers(1, 10)) :]
        else:
            code = code[:at] + draw(JUNK) + code[at:]
    return lang, code


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=snippets(), kind=st.sampled_from(TYPES), seed=st.integers(0, 10_000))
def test_poisoned_code_reparses_with_no_new_errors(
    sample: tuple[str, str], kind: TriggerType, seed: int
) -> None:
    lang, code = sample
    spec = spec_for(kind, lang)
    result = insert_trigger(code, lang, spec, random.Random(seed))
    if result is None:
        return
    assert error_nodes(result, lang) <= error_nodes(code, lang)
    if error_nodes(code, lang) == 0:
        assert_contains_trigger(code, result, lang, spec)
