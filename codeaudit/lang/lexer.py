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


def lex(source: str, language: str, *, max_tokens: int | None = None) -> LexResult:
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
    """
    lang = normalize_language(language)
    if max_tokens is not None and max_tokens >= 0:
        budget = PREFIX_MIN_CHARS // 4
        previous: tuple[CodeToken, ...] | None = None
        while len(source) > PREFIX_MIN_CHARS and budget < len(source):
            cut = source.rfind("\n", budget // 2, budget) + 1 or budget
            part = _lex(source[:cut], lang, max_tokens)
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
    return _lex(source, lang, max_tokens)


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
    parents: dict[int, tree_sitter.Node] = {}
    while stack:
        node, in_error = stack.pop()
        node_type = node.type
        if node_type == "ERROR":
            error_nodes += 1
            in_error = True
        is_leaf = node.child_count == 0 or node_type in _ATOMIC_TYPES
        if not is_leaf:
            children = node.children
            for child in children:
                parents[child.id] = node
            stack.extend((child, in_error) for child in reversed(children))
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
                    role=_identifier_role(node, parents) if kind is TokenKind.IDENTIFIER else None,
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
