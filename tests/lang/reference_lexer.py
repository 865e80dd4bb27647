"""A frozen copy of the lexer's walk as it was before the fast lexer (the golden reference).

The tests compare :func:`reference_lex` with :func:`codeaudit.lang.lexer.lex` token for token;
do not "fix" this file: it is the definition of the expected output.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from codeaudit.lang.languages import get_parser, normalize_language, reserved_words
from codeaudit.lang.lexer import (
    _ATOMIC_TYPES,
    _FALLBACK,
    _IDENTIFIER_ROLE_BY_TYPE,
    _KEYWORD_LEAVES,
    _LITERAL_LEAVES,
    _PREPROC_TEXT,
    CodeToken,
    IdentRole,
    LexResult,
    TokenKind,
)

if TYPE_CHECKING:
    import tree_sitter


def reference_lex(source: str, language: str, *, max_tokens: int | None = None) -> LexResult:
    """The old ``lex`` for sources below the prefix threshold (every test input)."""
    return _lex(source, normalize_language(language), max_tokens)


def _identifier_role(node: tree_sitter.Node) -> IdentRole:
    """The role a name plays, from its node type and its place in the tree."""
    role = _IDENTIFIER_ROLE_BY_TYPE.get(node.type, IdentRole.VARIABLE)
    parent = node.parent
    if parent is None:
        return role
    # Climb through qualified / scoped names: A::get, a.b.c
    child, ancestor = node, parent
    while ancestor is not None and ancestor.type in {
        "qualified_identifier",
        "scoped_identifier",
        "template_function",
        "destructor_name",
    }:
        if ancestor.child_by_field_name("name") not in (None, child) and ancestor.type != (
            "destructor_name"
        ):
            break  # we are the scope part (namespace), not the name
        child, ancestor = ancestor, ancestor.parent
    if ancestor is None:
        return role
    kind = ancestor.type
    if kind in {"function_declarator", "call_expression"} and _is_field(
        ancestor, child, ("declarator", "function")
    ):
        return IdentRole.FUNCTION
    if kind == "field_expression" and _is_field(ancestor, child, ("field",)):
        grand = ancestor.parent
        if (
            grand is not None
            and grand.type == "call_expression"
            and _is_field(grand, ancestor, ("function",))
        ):
            return IdentRole.FUNCTION
        return IdentRole.FIELD
    if kind in {"method_declaration", "method_invocation", "constructor_declaration"} and (
        _is_field(ancestor, child, ("name",))
    ):
        return IdentRole.FUNCTION
    if kind == "function_definition" and _is_field(ancestor, child, ("name",)):
        return IdentRole.FUNCTION  # Python
    if kind == "call" and _is_field(ancestor, child, ("function",)):
        return IdentRole.FUNCTION  # Python f(x)
    if kind == "attribute" and _is_field(ancestor, child, ("attribute",)):
        grand = ancestor.parent
        if grand is not None and grand.type == "call" and _is_field(grand, ancestor, ("function",)):
            return IdentRole.FUNCTION  # Python obj.f(x)
        return IdentRole.FIELD
    if kind in {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "class_definition",
    } and _is_field(ancestor, child, ("name",)):
        return IdentRole.TYPE
    if kind == "field_access" and _is_field(ancestor, child, ("field",)):
        return IdentRole.FIELD  # Java a.b
    return role


def _is_field(parent: tree_sitter.Node, child: tree_sitter.Node, names: tuple[str, ...]) -> bool:
    for name in names:
        target = parent.child_by_field_name(name)
        if target is not None and target.id == child.id:
            return True
    return False


_DIRECTIVE = re.compile(r"#\s*[A-Za-z_]\w*")
_WORDLIKE = re.compile(r"[^\W\d]\w*")


def _classify_leaf(node: tree_sitter.Node, text: str, reserved: frozenset[str]) -> TokenKind:
    kind = node.type
    if kind in _ATOMIC_TYPES or kind in _LITERAL_LEAVES or kind.endswith("_literal"):
        return TokenKind.LITERAL
    if kind.endswith("identifier"):
        # Error recovery can label a reserved word an identifier ('if' inside an ERROR node);
        # a reserved word is never a name.
        return TokenKind.KEYWORD if text in reserved else TokenKind.IDENTIFIER
    if kind in _KEYWORD_LEAVES:
        return TokenKind.KEYWORD
    if not node.is_named:
        if text in reserved or _DIRECTIVE.fullmatch(text):
            return TokenKind.KEYWORD
        if _WORDLIKE.fullmatch(text):
            # A contextual keyword the grammar used as a keyword here (e.g. Java 'record').
            return TokenKind.KEYWORD
        return TokenKind.PUNCTUATION
    if _WORDLIKE.fullmatch(text):
        return TokenKind.KEYWORD if text in reserved else TokenKind.IDENTIFIER
    return TokenKind.PUNCTUATION


class _Offsets:
    """Maps tree-sitter byte offsets to string character offsets (identity for ASCII)."""

    def __init__(self, source: str, data: bytes) -> None:
        self._ascii = len(data) == len(source)
        if not self._ascii:
            self._char_at: list[int] = [0] * (len(data) + 1)
            pos = 0
            for index, char in enumerate(source):
                width = len(char.encode("utf-8", "surrogatepass"))
                for k in range(width):
                    self._char_at[pos + k] = index
                pos += width
            self._char_at[pos] = len(source)

    def __call__(self, byte_offset: int) -> int:
        return byte_offset if self._ascii else self._char_at[byte_offset]


def _regex_tokens(
    source: str, start: int, end: int, line: int, reserved: frozenset[str], node_type: str
) -> list[CodeToken]:
    """Lex a span with the fallback lexer (preprocessor bodies, text the parser skipped)."""
    tokens = []
    for match in _FALLBACK.finditer(source, start, end):
        group = match.lastgroup
        text = match.group()
        if group in {"ws", "comment"}:
            continue
        tok_line = line + source.count("\n", start, match.start())
        if group == "string" or group == "number":
            kind = TokenKind.LITERAL
        elif group == "word":
            kind = TokenKind.KEYWORD if text in reserved else TokenKind.IDENTIFIER
        else:
            kind = TokenKind.PUNCTUATION
        tokens.append(
            CodeToken(
                text=text,
                kind=kind,
                start=match.start(),
                end=match.end(),
                line=tok_line,
                node_type=node_type if group != "string" else "string_literal",
                role=IdentRole.VARIABLE if kind is TokenKind.IDENTIFIER else None,
                in_error=node_type == "ERROR",
            )
        )
    return tokens


def _lex(source: str, lang: str, max_tokens: int | None) -> LexResult:
    reserved = reserved_words(lang)
    data = source.encode("utf-8", "surrogatepass")
    tree = get_parser(lang).parse(data)
    offset = _Offsets(source, data)

    tokens: list[CodeToken] = []
    error_nodes = 0
    skipped = 0
    covered_to = 0  # character offset up to which the source is accounted for
    truncated = False
    kinds: dict[tuple[str, bool, str], TokenKind] = {}

    def cover_gap(upto: int, line: int) -> None:
        nonlocal skipped
        if upto > covered_to and source[covered_to:upto].strip():
            gap = _regex_tokens(source, covered_to, upto, line, reserved, "ERROR")
            if gap:
                skipped += 1
                tokens.extend(gap)

    # Iterative pre-order walk; the stack holds (node, inside_error).
    stack: list[tuple[tree_sitter.Node, bool]] = [(tree.root_node, False)]
    while stack:
        node, in_error = stack.pop()
        node_type = node.type
        if node_type == "ERROR":
            error_nodes += 1
            in_error = True
        is_leaf = node.child_count == 0 or node_type in _ATOMIC_TYPES
        if not is_leaf:
            stack.extend((child, in_error) for child in reversed(node.children))
            continue
        start, end = offset(node.start_byte), offset(node.end_byte)
        if start == end:  # MISSING nodes and other zero-width leaves
            if node.is_missing:
                error_nodes += 1
            continue
        line = node.start_point[0] + 1
        cover_gap(start, line - source.count("\n", covered_to, start))
        covered_to = max(covered_to, end)
        if "comment" in node_type:
            continue
        text = source[start:end]
        if node_type in _PREPROC_TEXT:
            tokens.extend(_regex_tokens(source, start, end, line, reserved, node_type))
        else:
            key = (node_type, node.is_named, text)
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = _classify_leaf(node, text, reserved)
            tokens.append(
                CodeToken(
                    text=text,
                    kind=kind,
                    start=start,
                    end=end,
                    line=line,
                    node_type=node_type,
                    role=_identifier_role(node) if kind is TokenKind.IDENTIFIER else None,
                    in_error=in_error,
                )
            )
        if max_tokens is not None and len(tokens) >= max_tokens:
            truncated = True
            del tokens[max_tokens:]
            break
    if not truncated:
        cover_gap(len(source), source.count("\n", 0, covered_to) + 1)
        if max_tokens is not None and len(tokens) > max_tokens:
            truncated = True
            del tokens[max_tokens:]
    return LexResult(
        tokens=tuple(tokens),
        language=lang,
        error_nodes=error_nodes,
        skipped_spans=skipped,
        truncated=truncated,
    )
