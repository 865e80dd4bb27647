from __future__ import annotations

import pytest

from codeaudit.errors import LanguageError
from codeaudit.lang import IdentRole, TokenKind, lex, normalize_language, reserved_words


def kinds(tokens):  # type: ignore[no-untyped-def]
    return {t.text: t.kind for t in tokens}


def roles(tokens):  # type: ignore[no-untyped-def]
    return {t.text: t.role for t in tokens if t.kind is TokenKind.IDENTIFIER}


C_CODE = """int copy_name(char *src, size_t n) {
    /* comment: strcpy is dangerous */
    char dst[16]; // trailing comment
    if (n > 16) return -1;
    memcpy(dst, src, n);
    printf("%s\\n", dst);
    return ctx->handler(dst) + 0x10;
}
"""


def test_c_tokens_kinds_roles_and_comments() -> None:
    result = lex(C_CODE, "c")
    texts = [t.text for t in result]
    assert texts[:6] == ["int", "copy_name", "(", "char", "*", "src"]
    assert not any("comment" in t or "dangerous" in t for t in texts)
    k = kinds(result)
    assert k["int"] is TokenKind.KEYWORD
    assert k["if"] is TokenKind.KEYWORD
    assert k["return"] is TokenKind.KEYWORD
    assert k['"%s\\n"'] is TokenKind.LITERAL  # the string is one token, verbatim
    assert k["0x10"] is TokenKind.LITERAL
    assert k[";"] is TokenKind.PUNCTUATION
    assert k["->"] is TokenKind.PUNCTUATION
    r = roles(result)
    assert r["copy_name"] is IdentRole.FUNCTION
    assert r["memcpy"] is IdentRole.FUNCTION
    assert r["printf"] is IdentRole.FUNCTION
    assert r["handler"] is IdentRole.FUNCTION  # called through a field
    assert r["src"] is IdentRole.VARIABLE
    assert r["dst"] is IdentRole.VARIABLE
    assert r["ctx"] is IdentRole.VARIABLE
    assert result.error_nodes == 0


def test_spans_point_back_into_the_source() -> None:
    result = lex(C_CODE, "c")
    for token in result:
        assert C_CODE[token.start : token.end] == token.text
    assert [t.line for t in result if t.text == "memcpy"] == [5]


def test_cpp_qualified_names_and_templates() -> None:
    code = "std::string Parser::name(int x) { auto p = new Node(); p->run(); return ns::f(x); }"
    result = lex(code, "cpp")
    r = roles(result)
    assert r["name"] is IdentRole.FUNCTION
    assert r["Parser"] is IdentRole.NAMESPACE
    assert r["run"] is IdentRole.FUNCTION
    assert r["f"] is IdentRole.FUNCTION
    assert r["p"] is IdentRole.VARIABLE
    assert r["Node"] is IdentRole.TYPE
    assert kinds(result)["new"] is TokenKind.KEYWORD


def test_java_methods_fields_and_types() -> None:
    code = (
        "class Box { int getX(String s_name) { return this.size + s_name.length() + helper(1); } }"
    )
    result = lex(code, "java")
    r = roles(result)
    assert r["getX"] is IdentRole.FUNCTION
    assert r["length"] is IdentRole.FUNCTION
    assert r["helper"] is IdentRole.FUNCTION
    assert r["Box"] is IdentRole.TYPE
    assert r["String"] is IdentRole.TYPE
    assert r["size"] is IdentRole.FIELD
    assert r["s_name"] is IdentRole.VARIABLE
    assert kinds(result)["class"] is TokenKind.KEYWORD


def test_python_functions_strings_and_comments() -> None:
    code = (
        'def load(path, mode="r"):\n'
        "    # read it\n"
        "    data = open(path).read()\n"
        "    return obj.parse(data) if data else None\n"
    )
    result = lex(code, "python")
    texts = [t.text for t in result]
    assert "# read it" not in texts
    assert '"r"' in texts
    r = roles(result)
    assert r["load"] is IdentRole.FUNCTION
    assert r["open"] is IdentRole.FUNCTION
    assert r["read"] is IdentRole.FUNCTION
    assert r["parse"] is IdentRole.FUNCTION
    assert r["path"] is IdentRole.VARIABLE
    assert kinds(result)["None"] is TokenKind.LITERAL
    assert kinds(result)["def"] is TokenKind.KEYWORD


def test_broken_code_still_lexes_every_character() -> None:
    code = "int f( { x = = 3; @@ $weird `tick` return y;"
    result = lex(code, "c")
    texts = [t.text for t in result]
    assert result.error_nodes > 0
    for expected in ("f", "x", "3", "return", "y"):
        assert expected in texts
    assert any(t.in_error for t in result)
    joined = "".join(texts)
    for char in "@$`":
        assert char in joined


def test_preprocessor_bodies_are_lexed() -> None:
    result = lex("#define SIZE(a) ((a) * 4)\nint x = SIZE(2);\n", "c")
    texts = [t.text for t in result]
    assert texts[:2] == ["#define", "SIZE"]
    assert texts.count("*") == 1 and "4" in texts


def test_non_ascii_source_offsets_are_character_offsets() -> None:
    code = 'int f() { char *s = "héllo wörld"; int résumé = 1; return résumé; }'
    result = lex(code, "c")
    for token in result:
        assert code[token.start : token.end] == token.text
    assert "résumé" in [t.text for t in result]


def test_max_tokens_truncates_and_says_so() -> None:
    result = lex(C_CODE, "c", max_tokens=5)
    assert len(result) == 5 and result.truncated
    assert not lex(C_CODE, "c").truncated


def test_language_names_and_errors() -> None:
    assert normalize_language("C++") == "cpp"
    assert normalize_language("py") == "python"
    with pytest.raises(LanguageError, match="unsupported language 'cobol'"):
        normalize_language("cobol")
    with pytest.raises(LanguageError):
        lex("x", "rust")


def test_reserved_words_come_from_the_grammar() -> None:
    c = reserved_words("c")
    assert {"if", "while", "return", "struct", "int", "sizeof"} <= c
    assert "memcpy" not in c
    java = reserved_words("java")
    assert {"class", "public", "int", "null"} <= java
    assert "record" not in java  # contextual keyword: can name a variable
    py = reserved_words("python")
    assert {"def", "lambda", "None", "True"} <= py
    assert "print" not in py and "match" not in py
