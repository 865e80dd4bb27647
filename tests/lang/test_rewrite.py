from __future__ import annotations

import ast
import json
import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeaudit.data.synthetic import generate
from codeaudit.lang import TokenKind, get_parser, lex
from codeaudit.lang.rewrite import (
    FRESH_NAMES,
    RewriteKind,
    apply_rewrite,
    fresh_names,
    random_rewrites,
    renamable_variables,
    rename_variable,
    supported_kinds,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SWAPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def error_nodes(code: str, lang: str) -> int:
    root = get_parser(lang).parse(code.encode("utf-8")).root_node
    stack, count = [root], 0
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def toks(code: str, lang: str) -> list[tuple[TokenKind, str]]:
    return [(t.kind, t.text) for t in lex(code, lang)]


def is_rename(before: list, after: list) -> bool:
    """Exactly the identifier tokens spelling one name changed, all to one new name."""
    if len(before) != len(after):
        return False
    changed = {(a[1], b[1]) for a, b in zip(before, after, strict=True) if a != b}
    if len(changed) != 1:
        return False
    ((old, new),) = changed
    return all(
        a[0] is b[0]
        and (a == b or (a[0] is TokenKind.IDENTIFIER and a[1] == old and b[1] == new))
        and not (a[1] == old and b[1] != new)
        for a, b in zip(before, after, strict=True)
    )


def is_insertion(before: list, after: list, inserted: list[tuple[TokenKind, str]]) -> bool:
    """``after`` is ``before`` with exactly the tokens ``inserted`` added (in this order)."""
    if len(after) != len(before) + len(inserted):
        return False
    extra, i = [], 0
    for token in after:
        if i < len(before) and token == before[i]:
            i += 1
        else:
            extra.append(token)
    return i == len(before) and extra == inserted


def is_swap(before: list, after: list) -> bool:
    """Same tokens, one comparison operator mirrored, punctuation and operands reordered."""
    if len(before) != len(after) or before == after:
        return False
    lo = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b)
    hi = len(before) - next(
        i for i, (a, b) in enumerate(zip(reversed(before), reversed(after), strict=True)) if a != b
    )
    window_a, window_b = before[lo:hi], after[lo:hi]
    for k, token in enumerate(window_a):
        if token[0] is TokenKind.PUNCTUATION and token[1] in SWAPPED:
            mirrored = [*window_a[:k], (token[0], SWAPPED[token[1]]), *window_a[k + 1 :]]
            if Counter(mirrored) == Counter(window_b):
                return True
    return False


def expected_token_change(before: str, after: str, lang: str) -> bool:
    a, b = toks(before, lang), toks(after, lang)
    empty = [(TokenKind.KEYWORD, "pass")] if lang == "python" else [(TokenKind.PUNCTUATION, ";")]
    parens = [(TokenKind.PUNCTUATION, "("), (TokenKind.PUNCTUATION, ")")]
    return (
        is_rename(a, b) or is_insertion(a, b, empty) or is_insertion(a, b, parens) or is_swap(a, b)
    )


def all_outputs(code: str, lang: str, kind: RewriteKind, seeds: int = 40) -> set[str | None]:
    return {apply_rewrite(code, lang, kind, random.Random(seed)) for seed in range(seeds)}


# ---------------------------------------------------------------------------------------------
# C
# ---------------------------------------------------------------------------------------------

C_CODE = """#define SCALE 4
int process(struct pkt *p, const char *src, int len)
{
    int n = len * SCALE; /* n counts bytes, see tmp */
    char buf[16];
    size_t i;
    int LIMIT = 8;
    extern int verbose;
    if (n > p->len)
        return -1;
    for (i = 0; i < n && i < LIMIT; i++)
        buf[i] = src[i];
    state = 1;
    {
        int state = n;
        use(state);
    }
    if (verbose)
        log_msg("n=%d tmp", n);
    checksum(buf, n);
    goto done;
done:
    return MAX_LEN + sizeof(struct pkt);
}
"""


def test_c_renamable_variables_avoid_the_traps() -> None:
    # len: also the field p->len; LIMIT: macro-looking; verbose: extern (a global); state: used
    # before the inner declaration (so a global there); SCALE, MAX_LEN: macros; checksum,
    # log_msg, use: functions; done: a label; pkt: a type; tmp: only in a comment and a string.
    assert renamable_variables(C_CODE, "c") == ["buf", "i", "n", "p", "src"]


def test_c_rename_exact_output() -> None:
    out = rename_variable(C_CODE, "c", "n", "nbytes")
    assert out == C_CODE.replace("int n = len", "int nbytes = len").replace(
        "(n > p->len)", "(nbytes > p->len)"
    ).replace("i < n &&", "i < nbytes &&").replace("state = n;", "state = nbytes;").replace(
        'tmp", n);', 'tmp", nbytes);'
    ).replace("(buf, n);", "(buf, nbytes);")
    assert "/* n counts bytes" in out and '"n=%d tmp"' in out  # comment and string untouched
    assert is_rename(toks(C_CODE, "c"), toks(out, "c"))
    # A one-letter name that is a substring of many others.
    out_i = rename_variable(C_CODE, "c", "i", "k")
    assert "for (k = 0; k < n && k < LIMIT; k++)" in out_i
    assert "buf[k] = src[k];" in out_i and "size_t k;" in out_i and "if (verbose)" in out_i


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("len", "size"),  # not renamable: also a field
        ("state", "st"),  # not renamable: partly a global
        ("checksum", "cs"),  # a function
        ("n", "int"),  # keyword
        ("n", "size_t"),  # built-in type name
        ("n", "2nd"),
        ("n", "a-b"),
        ("n", ""),
        ("n", "buf"),  # already occurs
        ("n", "use"),  # already occurs (as a function)
        ("n", "n"),
        ("n", "and"),
    ],
)
def test_c_rename_rejections(old: str, new: str) -> None:
    with pytest.raises(ValueError) as info:
        rename_variable(C_CODE, "c", old, new)
    assert "\n" not in str(info.value)


def test_c_each_kind_on_small_examples() -> None:
    assert all_outputs(
        "int f(int a, int b) { return a < b; }", "c", RewriteKind.SWAP_COMPARISON
    ) == {"int f(int a, int b) { return b > a; }"}
    # Not swapped: operands with side effects (a call, an increment).
    assert all_outputs(
        "int f(int a) { return g(a) <= a++; }", "c", RewriteKind.SWAP_COMPARISON
    ) == {None}
    assert all_outputs("int f(int a) { return a; }", "c", RewriteKind.REDUNDANT_PARENS) == {
        "int f(int a) { return (a); }"
    }
    # Never inside a (possibly stringifying) macro argument, nor on a call.
    assert all_outputs(
        "int f(int a) { CHECK(a < 1); return g(a); }", "c", RewriteKind.REDUNDANT_PARENS
    ) == {None}
    assert all_outputs(
        "void f(int a)\n{\n    g(a);\n    h(a);\n}\n", "c", RewriteKind.EMPTY_STATEMENT
    ) == {
        "void f(int a)\n{;\n    g(a);\n    h(a);\n}\n",
        "void f(int a)\n{\n    g(a);;\n    h(a);\n}\n",
    }
    # C90: no empty statement before a declaration.
    assert all_outputs(
        "void f(void)\n{\n    int a = 1;\n    g(a);\n}\n", "c", RewriteKind.EMPTY_STATEMENT
    ) == {"void f(void)\n{\n    int a = 1;;\n    g(a);\n}\n"}
    renamed = all_outputs("int f(int a) { return a; }", "c", RewriteKind.RENAME_VARIABLE)
    assert len(renamed) >= 10
    assert renamed <= {f"int f(int {name}) {{ return {name}; }}" for name in FRESH_NAMES}


def test_c_several_declarators_in_one_declaration() -> None:
    code = (
        "unsigned f(const unsigned char *d, unsigned n)\n{\n    unsigned s = 0, k;\n"
        "    for (k = 0; k < n; k++)\n        s += d[k];\n    return s;\n}\n"
    )
    assert renamable_variables(code, "c") == ["d", "k", "n", "s"]
    assert rename_variable(code, "c", "k", "idx") == code.replace("k", "idx")


def test_c_rewrites_keep_the_tree_sitter_reading() -> None:
    # (a) + b / 2 reads as a cast of +b in tree-sitter-c: that site is skipped.
    assert all_outputs(
        "int f(int a, int b) { return a + b / 2; }", "c", RewriteKind.REDUNDANT_PARENS
    ) == {
        "int f(int a, int b) { return a + (b) / 2; }",
        "int f(int a, int b) { return a + b / (2); }",
    }
    # Swapping identical operands is no rewrite at all.
    assert all_outputs(
        "int f(void) { if (5 == 5) return 1; return 0; }", "c", RewriteKind.SWAP_COMPARISON
    ) == {None}


def test_c_macro_loops_are_not_split() -> None:
    code = "void f(void) { g(); list_for_each_entry(pos, head, member) { a(pos); } }"
    outputs = all_outputs(code, "c", RewriteKind.EMPTY_STATEMENT)
    assert outputs == {
        "void f(void) {; g(); list_for_each_entry(pos, head, member) { a(pos); } }",
        "void f(void) { g(); list_for_each_entry(pos, head, member) {; a(pos); } }",
    }
    # Arguments of a macro that takes a member name (len here) are never renamed.
    member = (
        "void f(struct s *p) { int len = 0; char *q = container_of(p, struct s, len); g(len, q); }"
    )
    assert renamable_variables(member, "c") == ["q"]
    # FOREACH(x) y = 1; reads as a declaration of y: not trusted.
    assert renamable_variables("void f(int n) { g(n); FOREACH(x) y = n; use(y); }", "c") == ["n"]


def test_c_missing_return_type_is_still_analysed() -> None:
    code = (
        "foo(int a, char *b)\n{\n    int x = a;\n    if (x < a)\n        return 0;\n"
        "    return x;\n}\n"
    )
    before = error_nodes(code, "c")
    assert before > 0
    assert renamable_variables(code, "c") == ["a", "b", "x"]
    out = rename_variable(code, "c", "x", "tmp")
    assert out == code.replace("x", "tmp")
    assert error_nodes(out, "c") <= before
    for kind in RewriteKind:
        result = apply_rewrite(code, "c", kind, random.Random(0))
        assert result is not None and error_nodes(result, "c") <= before


def test_code_with_parse_errors_never_gains_errors() -> None:
    code = (
        "int f(int a, int b)\n{\n    int c = a;\n    c = @@ b $ ;\n    if (a < c) return a;\n"
        "    return b;\n}\n"
    )
    before = error_nodes(code, "c")
    assert before > 0
    names = renamable_variables(code, "c")
    assert "b" not in names  # one of its occurrences is inside the error
    assert "a" in names
    for seed in range(10):
        for version in random_rewrites(code, "c", 8, random.Random(seed)):
            assert error_nodes(version, "c") <= before


# ---------------------------------------------------------------------------------------------
# C++
# ---------------------------------------------------------------------------------------------

CPP_CODE = """int Parser::consume(std::vector<int>& items, int limit) {
    int total = 0;
    int count = 0;
    for (auto item : items) {
        if (item < limit) total += item;
    }
    this->count = total;
    auto check = [limit](int v) { return v < limit; };
    std::sort(items.begin(), items.end());
    return check(total) ? total : std::max(total, limit);
}
"""


def test_cpp_renamable_variables() -> None:
    # count: also a member (this->count); check: called; std, sort, max, begin: not variables.
    assert renamable_variables(CPP_CODE, "cpp") == ["item", "items", "limit", "total", "v"]
    assert renamable_variables("void f() { int x = ns::x; g(x); }", "cpp") == []


def test_cpp_rename_exact_output() -> None:
    out = rename_variable(CPP_CODE, "cpp", "limit", "cap")
    assert out == CPP_CODE.replace("limit", "cap")
    assert is_rename(toks(CPP_CODE, "cpp"), toks(out, "cpp"))
    with pytest.raises(ValueError):
        rename_variable(CPP_CODE, "cpp", "limit", "class")
    with pytest.raises(ValueError):
        rename_variable(CPP_CODE, "cpp", "limit", "not_eq")
    with pytest.raises(ValueError):
        rename_variable(CPP_CODE, "cpp", "count", "n")


def test_cpp_each_kind_on_small_examples() -> None:
    code = "bool f(const S& s, int k) {\n    return s.size >= k;\n}\n"
    # s.size may have a class type whose operator<= exists without operator>=: not swapped.
    assert all_outputs(code, "cpp", RewriteKind.SWAP_COMPARISON) == {None}
    assert all_outputs(
        "bool f(std::string s, std::string t) { return s < t; }", "cpp", RewriteKind.SWAP_COMPARISON
    ) == {None}
    assert all_outputs(
        "bool f(int k, const char *p) { return k >= 3 && p != nullptr; }",
        "cpp",
        RewriteKind.SWAP_COMPARISON,
    ) == {
        "bool f(int k, const char *p) { return 3 <= k && p != nullptr; }",
        "bool f(int k, const char *p) { return k >= 3 && nullptr != p; }",
    }
    assert all_outputs(code, "cpp", RewriteKind.REDUNDANT_PARENS) == {
        "bool f(const S& s, int k) {\n    return (s.size) >= k;\n}\n",
        "bool f(const S& s, int k) {\n    return s.size >= (k);\n}\n",
    }
    assert all_outputs(code, "cpp", RewriteKind.EMPTY_STATEMENT) == {
        "bool f(const S& s, int k) {;\n    return s.size >= k;\n}\n"
    }
    # decltype(auto) would turn return (x) into a reference: no parentheses on returns then.
    assert all_outputs(
        "decltype(auto) f(int x) { return x; }", "cpp", RewriteKind.REDUNDANT_PARENS
    ) == {None}
    # C++ allows declarations anywhere: both sites.
    assert (
        len(
            all_outputs(
                "void f() {\n  int a = 1;\n  g(a);\n}\n", "cpp", RewriteKind.EMPTY_STATEMENT
            )
        )
        == 2
    )


# ---------------------------------------------------------------------------------------------
# Java
# ---------------------------------------------------------------------------------------------

JAVA_CODE = """public int sum(int[] values, int limit) {
    int total = 0;
    int size = values.length;
    for (int i = 0; i < size; i++) {
        if (values[i] < limit) total += values[i];
    }
    this.total = total;
    outer: for (int k = 0; k < 1; k++) { break outer; }
    Runnable r = new Runnable() { public void run() { System.out.println(limit); } };
    log("total " + size());
    return total;
}"""


def test_java_renamable_variables() -> None:
    # total: also this.total; size: also a method; limit: used inside an anonymous class (an
    # inherited field could take it there); outer: a label; length: a field.
    assert renamable_variables(JAVA_CODE, "java") == ["i", "k", "r", "values"]


def test_java_rename_exact_output() -> None:
    out = rename_variable(JAVA_CODE, "java", "values", "xs")
    assert out == JAVA_CODE.replace("values", "xs")
    assert is_rename(toks(JAVA_CODE, "java"), toks(out, "java"))
    for bad in ("_", "class", "var", "null", "1x", "sum", "length"):
        with pytest.raises(ValueError):
            rename_variable(JAVA_CODE, "java", "values", bad)


def test_java_each_kind_on_small_examples() -> None:
    code = "int f(int x) {\n    g(x);\n    return x;\n}"
    # Never after the return: javac rejects an unreachable empty statement.
    assert all_outputs(code, "java", RewriteKind.EMPTY_STATEMENT) == {
        "int f(int x) {;\n    g(x);\n    return x;\n}",
        "int f(int x) {\n    g(x);;\n    return x;\n}",
    }
    assert all_outputs(code, "java", RewriteKind.REDUNDANT_PARENS) == {
        "int f(int x) {\n    g((x));\n    return x;\n}",
        "int f(int x) {\n    g(x);\n    return (x);\n}",
    }
    assert all_outputs(code, "java", RewriteKind.SWAP_COMPARISON) == {None}
    assert all_outputs(
        "boolean f(int[] a, int i) { return a[i] != this.n; }", "java", RewriteKind.SWAP_COMPARISON
    ) == {"boolean f(int[] a, int i) { return this.n != a[i]; }"}


# ---------------------------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------------------------

PY_CODE = """def update(self, items, limit=10):
    global counter
    counter = 0
    total = 0
    for item in items:
        if item < limit:
            total += item
    self.total = total
    helper = make_helper(items)
    result = helper(total)
    print("item %s" % limit)  # item
    size = len(items)
    def inner():
        gone = 1
        return result + gone
    return os.path.join(str(size), CONSTANT, gone, f"{size}")
"""


def test_python_renamable_variables() -> None:
    # self: never; counter: global; total: also an attribute; helper: called; size: read inside
    # an f-string; gone: local to inner() but read as a global outside it; os, len: not bound.
    assert renamable_variables(PY_CODE, "python") == ["item", "items", "limit", "result"]


def test_python_scoping_traps() -> None:
    closure = "def f(a):\n    def g():\n        return a + 1\n    return g()\n"
    assert renamable_variables(closure, "python") == ["a"]
    assert rename_variable(closure, "python", "a", "val") == (
        "def f(val):\n    def g():\n        return val + 1\n    return g()\n"
    )
    klass = "def f(a):\n    class K:\n        b = a\n    c = K.b\n    return c\n"
    assert renamable_variables(klass, "python") == ["a", "c"]  # b is a class attribute
    klass2 = "def f(a):\n    class K:\n        b = a\n    return K\n"
    assert renamable_variables(klass2, "python") == ["a"]
    assert renamable_variables("def f(a):\n    b = a\n    return locals()\n", "python") == []
    keyword_arg = "def f(a):\n    b = g(a=a)\n    return b\n"
    assert renamable_variables(keyword_arg, "python") == ["b"]
    imports = "def f(a):\n    import os\n    os = a\n    return os\n"
    assert renamable_variables(imports, "python") == ["a"]


def test_python_rename_exact_output() -> None:
    out = rename_variable(PY_CODE, "python", "item", "elem")
    expected = (
        PY_CODE.replace("for item in", "for elem in")
        .replace("if item <", "if elem <")
        .replace("+= item", "+= elem")
    )
    assert out == expected
    assert '"item %s"' in out and "# item" in out
    assert is_rename(toks(PY_CODE, "python"), toks(out, "python"))
    for bad in ("def", "None", "self", "2x", "a.b", "print", "len", "size"):
        with pytest.raises(ValueError):
            rename_variable(PY_CODE, "python", "item", bad)
    with pytest.raises(ValueError):
        rename_variable(PY_CODE, "python", "self", "me")


def test_python_each_kind_on_small_examples() -> None:
    code = "def f(x):\n    y = x\n    return y\n"
    # Not before the first statement: a docstring must stay first.
    assert all_outputs(code, "python", RewriteKind.EMPTY_STATEMENT) == {
        "def f(x):\n    y = x\n    pass\n    return y\n"
    }
    assert all_outputs(code, "python", RewriteKind.REDUNDANT_PARENS) == {
        "def f(x):\n    y = (x)\n    return y\n",
        "def f(x):\n    y = x\n    return (y)\n",
    }
    assert all_outputs(
        "def f(a, b):\n    return a.n <= b[0]\n", "python", RewriteKind.SWAP_COMPARISON
    ) == {"def f(a, b):\n    return b[0] >= a.n\n"}
    # Chained comparisons and calls are left alone.
    assert all_outputs(
        "def f(a, b):\n    return a < b < g(a)\n", "python", RewriteKind.SWAP_COMPARISON
    ) == {None}


def test_non_ascii_offsets() -> None:
    code = 'def f(a):\n    s = "héllo wörld"  # ü\n    return s + a\n'
    assert rename_variable(code, "python", "s", "tmp") == code.replace("s =", "tmp =").replace(
        "s + a", "tmp + a"
    )
    c_code = 'int f(int a) { /* ∑ */ const char *s = "é"; return a < s[0]; }'
    assert all_outputs(c_code, "c", RewriteKind.SWAP_COMPARISON) == {
        'int f(int a) { /* ∑ */ const char *s = "é"; return s[0] > a; }'
    }


# ---------------------------------------------------------------------------------------------
# chains, determinism, properties
# ---------------------------------------------------------------------------------------------


def test_supported_kinds_and_fresh_names() -> None:
    for lang in ("c", "cpp", "java", "python"):
        assert set(supported_kinds(lang)) == set(RewriteKind)
    names = fresh_names("int f(int tmp, int val) { return tmp + val; }", "c", 3)
    assert names == ["idx", "ptr", "count"]
    assert fresh_names("int f(int tmp) { return tmp; }", "c", len(FRESH_NAMES) + 1)[-2:] == [
        "v1",
        "v2",
    ]


@pytest.mark.parametrize(
    ("lang", "code"), [("c", C_CODE), ("cpp", CPP_CODE), ("java", JAVA_CODE), ("python", PY_CODE)]
)
def test_chains_are_deterministic_and_well_formed(lang: str, code: str) -> None:
    first = random_rewrites(code, lang, 10, random.Random(7))
    assert first == random_rewrites(code, lang, 10, random.Random(7))
    assert len(first) == 10
    assert first != random_rewrites(code, lang, 10, random.Random(8))
    previous = code
    for version in first:
        assert not get_parser(lang).parse(version.encode()).root_node.has_error
        assert expected_token_change(previous, version, lang), (previous, version)
        previous = version
    only = random_rewrites(code, lang, 5, random.Random(1), kinds=[RewriteKind.SWAP_COMPARISON])
    for before, after in pairwise([code, *only]):
        assert is_swap(toks(before, lang), toks(after, lang))


def test_chain_stops_when_no_site_is_left() -> None:
    code = "void f(void) { }"
    assert random_rewrites(code, "c", 5, random.Random(0)) == []
    assert apply_rewrite(code, "c", RewriteKind.RENAME_VARIABLE, random.Random(0)) is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000))
def test_property_synthetic_chains(seed: int) -> None:
    rng = random.Random(seed)
    for record in generate(2, seed):
        code = record["func"]
        assert error_nodes(code, "c") == 0
        previous = code
        for version in random_rewrites(code, "c", 10, rng):
            assert not get_parser("c").parse(version.encode()).root_node.has_error
            assert expected_token_change(previous, version, "c"), (previous, version)
            previous = version
        kinds_before = [t.kind for t in lex(code, "c")]
        renamed = random_rewrites(code, "c", 4, rng, kinds=[RewriteKind.RENAME_VARIABLE])
        for before, after in pairwise([code, *renamed]):
            assert [t.kind for t in lex(after, "c")] == kinds_before
            assert is_rename(toks(before, "c"), toks(after, "c"))


def _real_functions(per_file: int) -> list[dict]:
    records = []
    for name in ("juliet.jsonl", "bigvul.jsonl"):
        path = SHARED_DATA / name
        if not path.is_file():
            pytest.skip(f"{path} not present")
        lines = path.read_text(encoding="utf-8").splitlines()
        chosen = random.Random(0).sample(lines, per_file)
        records += [json.loads(line) for line in chosen]
    return records


def test_real_functions_chains_add_no_errors() -> None:
    rewritten = 0
    for index, record in enumerate(_real_functions(50)):
        code, lang = record["func"], record["lang"]
        before = error_nodes(code, lang)
        previous = code
        versions = random_rewrites(code, lang, 10, random.Random(index))
        rewritten += bool(versions)
        for version in versions:
            assert error_nodes(version, lang) <= before, record["id"]
            assert expected_token_change(previous, version, lang), record["id"]
            previous = version
    assert rewritten >= 90


# ---------------------------------------------------------------------------------------------
# oracles: the compiler / the Python AST see no difference
# ---------------------------------------------------------------------------------------------

C_ORACLE_HEADER = """#include <stddef.h>
struct pkt { int len; char *data; struct pkt *next; };
extern int verbose;
#define MAX_LEN 64
int helper(int v);
"""
C_ORACLE_FUNC = """int process(struct pkt *p, const char *src, int len)
{
    int n = len * 2, m;
    char buf[MAX_LEN];
    size_t i;
    if (n > p->len || n >= MAX_LEN)
        return -1;
    for (i = 0; i < (size_t)n; i++)
        buf[i] = src[i];
    m = verbose ? helper(n) : 0;
    {
        int n2 = n * n;
        n = n2 - helper(n) + p->data[0] - m;
    }
    return n + buf[0];
}
"""


def _assembly(directory: Path, name: str, code: str) -> str:
    import subprocess

    source = directory / f"{name}.c"
    source.write_text(C_ORACLE_HEADER + code, encoding="utf-8")
    target = directory / f"{name}.s"
    subprocess.run(
        ["gcc", "-std=c99", "-O0", "-S", "-o", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    lines = target.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith((".file", ".ident")))


def test_c_rewrites_compile_to_the_same_assembly(tmp_path: Path) -> None:
    import shutil

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    reference = _assembly(tmp_path, "orig", C_ORACLE_FUNC)
    for index, kind in enumerate(
        [k for k in RewriteKind if k is not RewriteKind.SWAP_COMPARISON] * 3
    ):
        variant = apply_rewrite(C_ORACLE_FUNC, "c", kind, random.Random(index))
        assert variant is not None and variant != C_ORACLE_FUNC
        assert _assembly(tmp_path, f"v{index}", variant) == reference, variant


def _py_canonical(tree: ast.AST, renames: dict[str, str]) -> str:
    """The AST with names mapped back and simple comparisons put in one orientation."""

    class Canon(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            node.id = renames.get(node.id, node.id)
            return node

        def visit_arg(self, node: ast.arg) -> ast.AST:
            node.arg = renames.get(node.arg, node.arg)
            return self.generic_visit(node)

        def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
            if node.name:
                node.name = renames.get(node.name, node.name)
            return self.generic_visit(node)

        def visit_Compare(self, node: ast.Compare) -> ast.AST:
            self.generic_visit(node)
            if len(node.ops) == 1:
                left, right, op = node.left, node.comparators[0], node.ops[0]
                mirror = {ast.Gt: ast.Lt, ast.GtE: ast.LtE}
                if type(op) in mirror:
                    return ast.Compare(right, [mirror[type(op)]()], [left])
                if isinstance(op, (ast.Eq, ast.NotEq)) and ast.dump(left) > ast.dump(right):
                    return ast.Compare(right, [op], [left])
            return node

    return ast.dump(Canon().visit(tree))


def _bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _stdlib_functions(limit: int) -> list[str]:
    import difflib
    import inspect
    import shlex
    import textwrap

    sources = []
    for module in (textwrap, shlex, difflib):
        for _, obj in sorted(vars(module).items()):
            members = [obj] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                members = [v for _, v in sorted(vars(obj).items()) if inspect.isfunction(v)]
            for function in members:
                if getattr(function, "__module__", None) == module.__name__:
                    sources.append(textwrap.dedent(inspect.getsource(function)))
    return sources[:limit]


def test_python_rewrites_keep_the_ast() -> None:
    checked = Counter()
    for index, code in enumerate(_stdlib_functions(80)):
        before = ast.parse(code)
        for kind in RewriteKind:
            out = apply_rewrite(code, "python", kind, random.Random(index))
            if out is None:
                continue
            after = ast.parse(out)
            renames: dict[str, str] = {}
            if kind is RewriteKind.RENAME_VARIABLE:
                (old,) = _bound_names(before) - _bound_names(after)
                (new,) = _bound_names(after) - _bound_names(before)
                renames = {new: old}
            if kind is RewriteKind.EMPTY_STATEMENT:
                assert ast.dump(after).count("Pass()") == ast.dump(before).count("Pass()") + 1
            else:
                assert _py_canonical(after, renames) == _py_canonical(before, {}), out
            checked[kind] += 1
    assert min(checked[k] for k in RewriteKind) >= 10, checked
