"""Lexing source code into code tokens with tree-sitter.

A code token is a leaf of the syntax tree, with comments dropped and every string or character
literal kept whole as one token (its text is kept verbatim; model tokenizers decide whether to
normalise it). Each token knows its kind (identifier, keyword, literal, punctuation), its
character span in the source, and for identifiers the role the name plays (function, variable,
type, field, ...), read from the tree: the backdoor pipeline places triggers by these.

Code that tree-sitter cannot fully parse still lexes: tokens inside ERROR nodes are kept and
flagged ``in_error``, and any text the parser skipped is lexed with a small regular-expression
lexer, so no source character is silently lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from codeaudit.lang.languages import get_parser, normalize_language, reserved_words
from codeaudit.lang.subtokens import subtokens

if TYPE_CHECKING:
    import tree_sitter


class TokenKind(str, Enum):
    IDENTIFIER = "identifier"
    KEYWORD = "keyword"
    LITERAL = "literal"
    PUNCTUATION = "punctuation"


class IdentRole(str, Enum):
    FUNCTION = "function"
    VARIABLE = "variable"
    TYPE = "type"
    FIELD = "field"
    NAMESPACE = "namespace"
    LABEL = "label"


@dataclass(frozen=True, slots=True)
class CodeToken:
    """One code token. ``start``/``end`` are character offsets into the source string."""

    text: str
    kind: TokenKind
    start: int
    end: int
    line: int
    node_type: str
    role: IdentRole | None = None
    in_error: bool = False

    @property
    def is_identifier(self) -> bool:
        return self.kind is TokenKind.IDENTIFIER

    @property
    def is_string(self) -> bool:
        return self.kind is TokenKind.LITERAL and self.node_type in _STRING_TYPES

    def subtokens(self) -> list[str]:
        """Identifier pieces with continuation markers; other tokens are one piece."""
        return subtokens(self.text) if self.is_identifier else [self.text]


#: A token as a plain tuple: the fields of :class:`CodeToken`, in order.
RawToken = tuple[str, TokenKind, int, int, int, str, "IdentRole | None", bool]

_NEW = object.__new__
_SETTERS = tuple(
    getattr(CodeToken, name).__set__
    for name in ("text", "kind", "start", "end", "line", "node_type", "role", "in_error")
)


def _make_token(
    text: str,
    kind: TokenKind,
    start: int,
    end: int,
    line: int,
    node_type: str,
    role: IdentRole | None,
    in_error: bool,
) -> CodeToken:
    """``CodeToken(...)`` at less than half the cost: the slots are set directly, skipping the
    frozen dataclass's ``__init__`` (which sets each field through ``object.__setattr__``)."""
    token = _NEW(CodeToken)
    s_text, s_kind, s_start, s_end, s_line, s_type, s_role, s_error = _SETTERS
    s_text(token, text)
    s_kind(token, kind)
    s_start(token, start)
    s_end(token, end)
    s_line(token, line)
    s_type(token, node_type)
    s_role(token, role)
    s_error(token, in_error)
    return token


@dataclass(slots=True)
class RawLex:
    """What :func:`lex_raw` gives: the tokens as tuples, and the parser's trouble counts."""

    tokens: list[RawToken]
    error_nodes: int
    skipped_spans: int
    truncated: bool


@dataclass(frozen=True)
class LexResult:
    """The tokens of one function, with what the parser could not handle."""

    tokens: tuple[CodeToken, ...]
    language: str
    error_nodes: int = 0
    skipped_spans: int = 0
    truncated: bool = False
    extras: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[CodeToken]:
        return iter(self.tokens)


# Node types lexed as one literal token (never descended into).
_STRING_TYPES = frozenset(
    {
        "string_literal",  # C, C++, Java
        "raw_string_literal",  # C++
        "char_literal",  # C, C++
        "character_literal",  # Java
        "text_block",  # Java
        "string",  # Python (including f-strings)
        "system_lib_string",  # C #include <...>
    }
)
_ATOMIC_TYPES = _STRING_TYPES | {"user_defined_literal"}
_LITERAL_LEAVES = frozenset(
    {
        "number_literal",
        "integer",
        "float",
        "true",
        "false",
        "null",
        "none",
        "nullptr",
        "null_literal",
        "decimal_integer_literal",
        "hex_integer_literal",
        "octal_integer_literal",
        "binary_integer_literal",
        "decimal_floating_point_literal",
        "hex_floating_point_literal",
        "ellipsis",
    }
)
_KEYWORD_LEAVES = frozenset(
    {
        "primitive_type",
        "integral_type",
        "floating_point_type",
        "boolean_type",
        "void_type",
        "auto",
        "this",
        "super",
        "type_qualifier",
    }
)
_IDENTIFIER_ROLE_BY_TYPE = {
    "type_identifier": IdentRole.TYPE,
    "field_identifier": IdentRole.FIELD,
    "property_identifier": IdentRole.FIELD,
    "namespace_identifier": IdentRole.NAMESPACE,
    "statement_identifier": IdentRole.LABEL,
    "identifier": IdentRole.VARIABLE,
}
_PREPROC_TEXT = frozenset({"preproc_arg"})
_FALLBACK = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z)|\#(?![A-Za-z])[^\n]*)
    | (?P<string>[LuU8]*"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)
    | (?P<number>\.?[0-9](?:[0-9A-Za-z_.]|[eEpP][+-])*)
    | (?P<word>\#?[^\W\d]\w*)
    | (?P<punct>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||::|\#\#|[-+*/%&|^!~<>=]=?|.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _identifier_role(node: tree_sitter.Node, parents: dict[int, tree_sitter.Node]) -> IdentRole:
    """The role a name plays, from its node type and its place in the tree. ``parents`` maps a
    node's id to its parent (``Node.parent`` costs the node's depth)."""
    role = _IDENTIFIER_ROLE_BY_TYPE.get(node.type, IdentRole.VARIABLE)
    parent = parents.get(node.id)
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
        child, ancestor = ancestor, parents.get(ancestor.id)
    if ancestor is None:
        return role
    kind = ancestor.type
    if kind in {"function_declarator", "call_expression"} and _is_field(
        ancestor, child, ("declarator", "function")
    ):
        return IdentRole.FUNCTION
    if kind == "field_expression" and _is_field(ancestor, child, ("field",)):
        grand = parents.get(ancestor.id)
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
        grand = parents.get(ancestor.id)
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

    def table(self) -> list[int]:
        """Character offset by byte offset (for a non-ASCII source only)."""
        return self._char_at


def _regex_tokens(
    source: str,
    start: int,
    end: int,
    line: int,
    reserved: frozenset[str],
    node_type: str,
    roles: bool = True,
) -> list[RawToken]:
    """Lex a span with the fallback lexer (preprocessor bodies, text the parser skipped)."""
    tokens: list[RawToken] = []
    in_error = node_type == "ERROR"
    variable = IdentRole.VARIABLE if roles else None
    for match in _FALLBACK.finditer(source, start, end):
        group = match.lastgroup
        if group == "ws" or group == "comment":
            continue
        text = match.group()
        tok_start = match.start()
        tok_line = line + source.count("\n", start, tok_start)
        if group == "string" or group == "number":
            kind = TokenKind.LITERAL
        elif group == "word":
            kind = TokenKind.KEYWORD if text in reserved else TokenKind.IDENTIFIER
        else:
            kind = TokenKind.PUNCTUATION
        tokens.append(
            (
                text,
                kind,
                tok_start,
                match.end(),
                tok_line,
                node_type if group != "string" else "string_literal",
                variable if kind is TokenKind.IDENTIFIER else None,
                in_error,
            )
        )
    return tokens


# With max_tokens, a source longer than PREFIX_MIN_CHARS is parsed a prefix at a time, starting
# at PREFIX_MIN_CHARS / 4 and doubling: the tokens are taken once two successive prefixes agree on
# them and they all end in the first PREFIX_TRUST of both (far from where either was cut). Past
# PREFIX_MAX_CHARS (a literal or comment of megabytes) the trusted tokens of that prefix are
# taken, even if fewer than wanted. Shorter sources are parsed whole (the walk still stops early).
PREFIX_MIN_CHARS = 1 << 20
PREFIX_TRUST = 0.75
PREFIX_MAX_CHARS = 1 << 22


def _span_key(tokens: tuple[CodeToken, ...]) -> list[tuple[str, int, int, TokenKind, bool]]:
    return [(t.text, t.start, t.end, t.kind, t.is_string) for t in tokens]


def lex(
    source: str, language: str, *, max_tokens: int | None = None, roles: bool = True
) -> LexResult:
    """Lex one function (or file) of ``language`` into code tokens.

    ``max_tokens`` stops after that many tokens (``truncated`` is then set), which bounds the work
    on extremely long inputs. A source of up to PREFIX_MIN_CHARS (a megabyte; real functions are
    far shorter) is parsed whole and the walk stops at ``max_tokens``: the tokens are exactly the
    first ``max_tokens`` of a full lex. A longer one is parsed one growing prefix at a time (each
    cut at a line end), and the tokens are taken once two successive prefixes give the same
    tokens (text, span, kind) all ending well before either cut, so a 50 MB function costs what
    its first megabyte costs. Those tokens may differ from a full parse in ``in_error`` and
    ``role`` (a cut function parses as an error), and in text only where a comment or literal
    longer than the first prefix straddles both cuts.

    ``roles=False`` skips working out identifier roles (every ``role`` is then None; nothing
    else changes): encoding for a model does not need them.
    """
    lang = normalize_language(language)
    if max_tokens is not None and max_tokens >= 0:
        budget = PREFIX_MIN_CHARS // 4
        previous: tuple[CodeToken, ...] | None = None
        while len(source) > PREFIX_MIN_CHARS and budget < len(source):
            cut = source.rfind("\n", budget // 2, budget) + 1 or budget
            part = _lex(source[:cut], lang, max_tokens, roles)
            trusted = tuple(t for t in part.tokens if t.end <= PREFIX_TRUST * cut)
            head = trusted[:max_tokens] if len(trusted) >= max_tokens else None
            if (
                head is not None and previous is not None and _span_key(head) == _span_key(previous)
            ) or budget >= PREFIX_MAX_CHARS:
                return LexResult(
                    tokens=head if head is not None else trusted,
                    language=lang,
                    error_nodes=part.error_nodes,
                    skipped_spans=part.skipped_spans,
                    truncated=True,
                )
            previous = head
            budget *= 2
    return _lex(source, lang, max_tokens, roles)


def _lex(source: str, lang: str, max_tokens: int | None, roles: bool = True) -> LexResult:
    raw = lex_raw(source, lang, max_tokens, roles=roles)
    return LexResult(
        tokens=tuple([_make_token(*t) for t in raw.tokens]),
        language=lang,
        error_nodes=raw.error_nodes,
        skipped_spans=raw.skipped_spans,
        truncated=raw.truncated,
    )


# Node flags by kind, for the walk.
_IS_ERROR = 1
_IS_ATOMIC = 2
_IS_COMMENT = 4
_IS_PREPROC = 8


def _node_flags(node_type: str) -> int:
    flags = 0
    if node_type == "ERROR":
        flags |= _IS_ERROR
    if node_type in _ATOMIC_TYPES:
        flags |= _IS_ATOMIC
    if "comment" in node_type:
        flags |= _IS_COMMENT
    if node_type in _PREPROC_TEXT:
        flags |= _IS_PREPROC
    return flags


#: Most leaf classifications kept per language by :func:`lex_raw` (then they start over).
KINDS_MAX = 1 << 16
_TABLES: dict[str, tuple[dict[int, tuple[str, int]], dict[tuple[int, bool, str], TokenKind]]] = {}


def _tables(
    lang: str,
) -> tuple[dict[int, tuple[str, int]], dict[tuple[int, bool, str], TokenKind]]:
    """What :func:`lex_raw` learns per language and keeps between calls: (type name, flags) by
    node kind id, and the kind of a leaf by (kind id, named, text). Both depend only on the
    grammar and its reserved words."""
    tables = _TABLES.get(lang)
    if tables is None:
        tables = _TABLES[lang] = ({}, {})
    return tables


def lex_raw(source: str, lang: str, max_tokens: int | None = None, *, roles: bool = True) -> RawLex:
    """The walk behind :func:`lex`, giving plain tuples (the fields of :class:`CodeToken`, in
    order) instead of token objects: what encoding needs, at a fraction of the cost. ``lang``
    must be canonical (:func:`normalize_language`); a source is parsed whole (no prefixes).
    ``roles=False`` leaves every role None (the role is the one costly field, and no model
    tokenizer reads it); every other field is the same.

    One pre-order walk with a tree cursor; every per-kind decision (type name, flags) and every
    per-(kind, text) classification is made once per language (:func:`_tables`).
    """
    reserved = reserved_words(lang)
    data = source.encode("utf-8", "surrogatepass")
    tree = get_parser(lang).parse(data)
    char_at = None if len(data) == len(source) else _Offsets(source, data).table()

    tokens: list[RawToken] = []
    append = tokens.append
    error_nodes = 0
    skipped = 0
    covered_to = 0  # character offset up to which the source is accounted for
    truncated = False
    limited = max_tokens is not None
    limit = max_tokens if max_tokens is not None else 0
    info, kinds = _tables(lang)
    if len(kinds) > KINDS_MAX:
        kinds.clear()
    identifier = TokenKind.IDENTIFIER

    cursor = tree.walk()
    goto_first_child = cursor.goto_first_child
    goto_next_sibling = cursor.goto_next_sibling
    goto_parent = cursor.goto_parent
    depth = 0
    error_depth = -1  # depth of the outermost ERROR node around the cursor; -1: none
    # Identifier roles look a few levels up; ``Node.parent`` costs the node's depth, so the walk
    # records each node's parent (the ancestors on the cursor's path) when roles are wanted.
    path: list[tree_sitter.Node] = []
    parents: dict[int, tree_sitter.Node] = {}
    while True:
        node = cursor.node
        assert node is not None
        if roles and path:
            parents[node.id] = path[-1]
        kind_id = node.kind_id
        entry = info.get(kind_id)
        if entry is None:
            node_type = node.type
            entry = info[kind_id] = (node_type, _node_flags(node_type))
        node_type, flags = entry
        if error_depth >= depth:  # pre-order: the ERROR subtree is behind us
            error_depth = -1
        if flags & _IS_ERROR:
            error_nodes += 1
            if error_depth < 0:
                error_depth = depth
        if not flags & _IS_ATOMIC and goto_first_child():
            depth += 1
            if roles:
                path.append(node)
            continue
        # A leaf (or a literal kept whole).
        if char_at is None:
            start = node.start_byte
            end = node.end_byte
        else:
            start = char_at[node.start_byte]
            end = char_at[node.end_byte]
        if start == end:  # MISSING nodes and other zero-width leaves
            if node.is_missing:
                error_nodes += 1
        else:
            line = node.start_point[0] + 1
            if start > covered_to and source[covered_to:start].strip():
                gap = _regex_tokens(
                    source,
                    covered_to,
                    start,
                    line - source.count("\n", covered_to, start),
                    reserved,
                    "ERROR",
                    roles,
                )
                if gap:
                    skipped += 1
                    tokens.extend(gap)
            if end > covered_to:
                covered_to = end
            if not flags & _IS_COMMENT:
                text = source[start:end]
                if flags & _IS_PREPROC:
                    tokens.extend(
                        _regex_tokens(source, start, end, line, reserved, node_type, roles)
                    )
                else:
                    named = node.is_named
                    key = (kind_id, named, text)
                    kind = kinds.get(key)
                    if kind is None:
                        kind = kinds[key] = _classify_leaf(node, text, reserved)
                    append(
                        (
                            text,
                            kind,
                            start,
                            end,
                            line,
                            node_type,
                            _identifier_role(node, parents)
                            if roles and kind is identifier
                            else None,
                            error_depth >= 0,
                        )
                    )
                if limited and len(tokens) >= limit:
                    truncated = True
                    del tokens[limit:]
                    break
        # Next node in pre-order.
        while depth > 0 and not goto_next_sibling():
            goto_parent()
            depth -= 1
            if roles:
                path.pop()
        if depth == 0:
            break
    if not truncated:
        if len(source) > covered_to and source[covered_to:].strip():
            gap = _regex_tokens(
                source,
                covered_to,
                len(source),
                source.count("\n", 0, covered_to) + 1,
                reserved,
                "ERROR",
                roles,
            )
            if gap:
                skipped += 1
                tokens.extend(gap)
        if limited and len(tokens) > limit:
            truncated = True
            del tokens[limit:]
    return RawLex(tokens, error_nodes, skipped, truncated)
