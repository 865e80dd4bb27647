"""The fast lexer and the fast vocabulary encoding give exactly what the old code gave.

The old lexer is frozen in :mod:`tests.lang.reference_lexer`; every token field (text, kind,
span, line, node type, role, in_error) and the error counts must match, for the four languages,
on generated code, on damaged code (cut, garbled, non-ASCII) and, where the shared data sets are
present, on a few hundred real functions. Encodings are compared with the old path (lex, then
``encode_source``), id for id.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from codeaudit.data.synthetic import generate
from codeaudit.lang.languages import LANGUAGES
from codeaudit.lang.lexer import lex, lex_raw
from codeaudit.models.tokenizer import VocabTokenizer, lex_budget
from tests.lang.reference_lexer import reference_lex

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
BUDGETS = (None, 513, 40, 1, 0)

EXTRA = {
    "c": [
        "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"
        'int f(void) { char *s = "é\\"x"; '
        "return L'z' + 0x1fULL; /* ü */ }\n",
        "int f( { if (x return; }} ;; @@ `",
        "void g() {\n#if X\n  a = b;\n#else\n  a = c;\n#endif\n  label: goto label; }",
        "struct s { int a; } v; int h(struct s *p) { return p->a + v.a + sizeof(*p); }",
    ],
    "cpp": [
        "namespace n { template <typename T> T A<T>::get() const { return std::move(x_); } }",
        'auto s = R"(raw\nstring)"_sv; A::~A() { this->f(); obj.m(); }',
        "int main() { std::vector<int> v{1,2}; for (auto& x : v) { x <<= 1; } return 0 }",
    ],
    "java": [
        'class A { record R(int x) {} void m() { String s = """\n  text\n  """; this.f(); }',
        "public class B extends C { B() { super(); } int get() { return a.b.c(); } @Override }",
    ],
    "python": [
        "def f(x):\n    return f'{x!r:>10}' + obj.attr(1) # comment\n",
        "class A:\n    def m(self, *a, **k):\n"
        "        yield from (i for i in a if i)\n  bad indent\n",
        "lambda: None\nx = [1, 2,\ndef g(: pass\nß = 'ü'\n",
    ],
}


def _damaged(code: str, rng: random.Random) -> list[str]:
    out = []
    for _ in range(4):
        cut = rng.randrange(len(code) + 1)
        out.append(code[:cut])
        i = rng.randrange(len(code) + 1)
        out.append(
            code[:i] + rng.choice(["{", ")", '"', "'", "/*", "é€", "\n#", "@", "\\"]) + code[i:]
        )
    return out


def _corpus() -> list[tuple[str, str]]:
    rng = random.Random(7)
    items: list[tuple[str, str]] = []
    for record in generate(60, 3):
        items.append((record["func"], "c"))
    for name, support in LANGUAGES.items():
        for code in [support.sample_function, *EXTRA.get(name, [])]:
            items.append((code, name))
            items.extend((damaged, name) for damaged in _damaged(code, rng))
    for code, _ in list(items[:20]):
        items.extend((damaged, "c") for damaged in _damaged(code, rng))
    return items


def _real_functions(limit: int = 300) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for name in ("bigvul.jsonl", "juliet.jsonl"):
        path = DATA / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if index >= limit:
                    break
                record = json.loads(line)
                items.append((record["func"], record.get("lang") or "c"))
    return items


def _fields(result: object) -> tuple[object, ...]:
    tokens = result.tokens  # type: ignore[attr-defined]
    counts = (
        result.error_nodes,  # type: ignore[attr-defined]
        result.skipped_spans,  # type: ignore[attr-defined]
        result.truncated,  # type: ignore[attr-defined]
    )
    return (
        [(t.text, t.kind, t.start, t.end, t.line, t.node_type, t.role, t.in_error) for t in tokens],
        counts,
    )


def _check_lex(items: list[tuple[str, str]]) -> None:
    for code, lang in items:
        for budget in BUDGETS:
            old = reference_lex(code, lang, max_tokens=budget)
            new = lex(code, lang, max_tokens=budget)
            assert _fields(new) == _fields(old), (lang, budget, code[:80])
            assert new.tokens == old.tokens
            raw = lex_raw(code, lang, budget)
            assert raw.tokens == [
                (t.text, t.kind, t.start, t.end, t.line, t.node_type, t.role, t.in_error)
                for t in old.tokens
            ]
            unroled = lex(code, lang, max_tokens=budget, roles=False)
            assert [t.role for t in unroled.tokens] == [None] * len(unroled.tokens)
            assert [(t.text, t.kind, t.start, t.line) for t in unroled.tokens] == [
                (t.text, t.kind, t.start, t.line) for t in old.tokens
            ]


def _check_encode(items: list[tuple[str, str]]) -> None:
    streams = [reference_lex(code, lang, max_tokens=200).tokens for code, lang in items[::2]]
    tokenizer = VocabTokenizer.build(streams, min_freq=2, max_size=400)
    for code, lang in items:
        for max_len in (512, 64, 5, 1, 0):
            lexed = reference_lex(code, lang, max_tokens=lex_budget(max_len))
            old = tokenizer.encode_source(
                code, lexed.tokens, max_len, lex_truncated=lexed.truncated
            )
            assert tokenizer.encode(code, lang, max_len) == old, (lang, max_len, code[:80])


def test_generated_and_damaged_code_lexes_as_before() -> None:
    _check_lex(_corpus())


def test_generated_and_damaged_code_encodes_as_before() -> None:
    _check_encode(_corpus())


@pytest.mark.skipif(not _real_functions(1), reason="shared data sets not present")
def test_real_functions_lex_and_encode_as_before() -> None:
    items = _real_functions()
    _check_lex(items)
    _check_encode(items)


def test_every_language_is_covered() -> None:
    assert {lang for _, lang in _corpus()} == set(LANGUAGES)


def test_the_tables_kept_between_calls_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every call learning its classifications afresh (the tables emptied each time) lexes and
    # encodes as the old lexer did, in every language, mixed in one process.
    from codeaudit.lang import lexer

    monkeypatch.setattr(lexer, "KINDS_MAX", -1)
    items = _corpus()[::3]
    _check_lex(items)
    _check_encode(items)
