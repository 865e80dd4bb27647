"""Language-neutral syntax-tree machinery: parsed source, tree walks, verified text edits.

The rewrites (:mod:`codeaudit.lang.rewrite`), the trigger insertion
(:mod:`codeaudit.backdoor.triggers`) and every language module work on a :class:`Source` (the
text, its tree, character offsets) and change it only through an :class:`Edit` that
:func:`verified` accepts: the new text is parsed again and its syntax tree must be exactly the
old tree with the intended change. Nothing here knows a language; what does is asked of the
source's :class:`~codeaudit.lang.support.LanguageSupport`.

Nothing here recurses over the tree, and nothing walks up a tree with tree-sitter's
``Node.parent`` (which searches down from the root, so it costs the node's depth): a
:class:`Source` records every node's parent in one walk, and the questions asked of every node
(:meth:`Source.under`, :meth:`Source.flagged`) are answered by one top-down pass each. A function
deeper than :data:`MAX_REWRITE_DEPTH` or larger than :data:`MAX_REWRITE_NODES` is not analysed at
all: :class:`Source` raises :class:`RewriteBudgetError`, and the callers skip the function and
count it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tree_sitter

    from codeaudit.lang.support import LanguageSupport

__all__ = [
    "COMMENT_TYPES",
    "MAX_REWRITE_DEPTH",
    "MAX_REWRITE_NODES",
    "TOO_DEEP",
    "TOO_LARGE",
    "Edit",
    "RewriteBudgetError",
    "Signature",
    "SignatureEntry",
    "Source",
    "ancestors",
    "apply_text",
    "callee_name",
    "check_budget",
    "deny_by_parent",
    "entry",
    "error_count",
    "errors_before",
    "follows_error",
    "indent_continuation",
    "is_field",
    "last_index_of",
    "named_children",
    "nearest",
    "signature",
    "verified",
    "walk",
]

SignatureEntry = tuple[str, bool, bool]
Signature = list[SignatureEntry]

COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})

#: Work budget per function of the rewrites and trigger insertion: a function whose syntax tree is
#: deeper than this many levels is skipped (ordinary code stays far below it; a long ``else if``
#: chain costs two levels per branch, a chain of ``a + b + ...`` one level per operand).
MAX_REWRITE_DEPTH = 1_000
#: ... or that has more syntax-tree nodes than this (about 250-300 KB of ordinary C; the largest
#: function of Big-Vul and Juliet has under 4,000). Eight rewrites of a function at this limit take
#: about 2.6 s on one core, trigger insertion about 0.5 s (benchmarks/input_budget.py).
MAX_REWRITE_NODES = 50_000


class RewriteBudgetError(ValueError):
    """A function over the work budget (:data:`MAX_REWRITE_DEPTH`, :data:`MAX_REWRITE_NODES`):
    not rewritten. ``reason`` says which limit, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"function skipped: {reason}")
        self.reason = reason


#: The reasons :class:`RewriteBudgetError` gives.
TOO_DEEP = f"syntax tree deeper than {MAX_REWRITE_DEPTH} levels"
TOO_LARGE = f"syntax tree of more than {MAX_REWRITE_NODES} nodes"


# --------------------------------------------------------------------------------------------
# Parsed source with character offsets
# --------------------------------------------------------------------------------------------


def check_budget(root: tree_sitter.Node) -> None:
    """RewriteBudgetError when the tree is over the per-function budget; the walk stops at the
    first node past it, so an oversized tree costs no more than the budget."""
    stack: list[tuple[tree_sitter.Node, int]] = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_REWRITE_DEPTH:
            raise RewriteBudgetError(TOO_DEEP)
        if count > MAX_REWRITE_NODES:
            raise RewriteBudgetError(TOO_LARGE)
        stack.extend((child, depth + 1) for child in node.children)


class Source:
    """A parsed function: the text, its tree, and byte-to-character offset mapping.

    Big-Vul style C/C++ functions often lack their return type (``foo(int a) {...}``), which
    tree-sitter cannot parse as a function. When prefixing the language's
    :attr:`~codeaudit.lang.support.LanguageSupport.analysis_prefix` (``int ``) parses with fewer
    errors, the prefixed text is what is analysed; every offset this class returns still refers
    to ``code``.
    """

    def __init__(self, code: str, support: LanguageSupport) -> None:
        self.code = code
        self.support = support
        self.lang = support.name
        parser = support.parser()
        plain = parser.parse(code.encode("utf-8", "surrogatepass")).root_node
        check_budget(plain)  # before any other walk: a function over budget costs one parse
        self.plain_errors = error_count(plain)
        self.prefix = ""
        root = plain
        if plain.has_error and support.analysis_prefix:
            prefix = support.analysis_prefix
            alternative = parser.parse((prefix + code).encode("utf-8", "surrogatepass")).root_node
            if error_count(alternative) < self.plain_errors:
                check_budget(alternative)
                self.prefix, root = prefix, alternative
        self.full = self.prefix + code
        self.root: tree_sitter.Node = root
        self._parents: dict[int, tree_sitter.Node] = {}
        self._memo: dict[object, dict[int, bool]] = {}
        self._preorder: Preorder | None = None
        self._index()
        self._char_at: list[int] | None = None
        data_length = len(self.full.encode("utf-8", "surrogatepass"))
        if data_length != len(self.full):
            char_at = [0] * (data_length + 1)
            pos = 0
            for index, char in enumerate(self.full):
                width = len(char.encode("utf-8", "surrogatepass"))
                for k in range(width):
                    char_at[pos + k] = index
                pos += width
            char_at[pos] = len(self.full)
            self._char_at = char_at

    def _index(self) -> None:
        """Every node's parent, in one walk."""
        parents = self._parents
        stack = [self.root]
        while stack:
            node = stack.pop()
            for child in node.children:
                parents[child.id] = node
                stack.append(child)

    def preorder(self) -> Preorder:
        """The tree's :func:`signature`, with where each node's subtree starts and ends in it
        (built on first use, once per source: every edit verified against it reuses it)."""
        if self._preorder is None:
            self._preorder = Preorder.of(self.root)
        return self._preorder

    def parent(self, node: tree_sitter.Node) -> tree_sitter.Node | None:
        """The node's parent (a dictionary look-up; ``Node.parent`` costs the node's depth)."""
        parent = self._parents.get(node.id)
        if parent is None and node.id != self.root.id:
            return node.parent  # a node of another tree: ask tree-sitter
        return parent

    def ancestors(self, node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
        """The node's ancestors, nearest first."""
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def nearest(self, node: tree_sitter.Node, types: frozenset[str]) -> tree_sitter.Node | None:
        """The closest ancestor of one of these types, or None."""
        for ancestor in self.ancestors(node):
            if ancestor.type in types:
                return ancestor
        return None

    def flagged(self, key: object, test: Callable[[tree_sitter.Node], bool]) -> dict[int, bool]:
        """For every node (by id), whether ``test`` holds for one of its strict ancestors; one
        top-down pass per ``key``, remembered."""
        flags = self._memo.get(key)
        if flags is None:
            flags = {self.root.id: False}
            stack = [self.root]
            while stack:
                node = stack.pop()
                below = flags[node.id] or test(node)
                for child in node.children:
                    flags[child.id] = below
                    stack.append(child)
            self._memo[key] = flags
        return flags

    def under(self, node: tree_sitter.Node, types: frozenset[str]) -> bool:
        """Whether one of the node's ancestors has one of these types."""
        flags = self.flagged(("under", types), lambda n: n.type in types)
        found = flags.get(node.id)
        if found is None:  # a node of another tree
            return any(a.type in types for a in self.ancestors(node))
        return found

    def _char(self, byte_offset: int) -> int:
        return byte_offset if self._char_at is None else self._char_at[byte_offset]

    def start(self, node: tree_sitter.Node) -> int:
        """Character offset in ``code`` where the node starts."""
        return self._char(node.start_byte) - len(self.prefix)

    def end(self, node: tree_sitter.Node) -> int:
        return self._char(node.end_byte) - len(self.prefix)

    def text(self, node: tree_sitter.Node) -> str:
        return self.full[self._char(node.start_byte) : self._char(node.end_byte)]

    def parse(self, code: str) -> tree_sitter.Node:
        """The tree of another version of the code, read the same way (same prefix)."""
        data = (self.prefix + code).encode("utf-8", "surrogatepass")
        return self.support.parser().parse(data).root_node


# --------------------------------------------------------------------------------------------
# Walking the tree
# --------------------------------------------------------------------------------------------


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under ``node`` (included), in document (pre-)order, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def entry(node: tree_sitter.Node) -> SignatureEntry:
    return (node.type, node.is_named, node.is_missing)


def signature(
    root: tree_sitter.Node,
    target: tree_sitter.Node | None = None,
    transform: Callable[[tree_sitter.Node], Signature] | None = None,
) -> Signature:
    """The tree's node kinds in pre-order; ``target``'s subtree replaced by ``transform(target)``.

    Two trees with equal signatures have the same structure (and the same ERROR and MISSING
    nodes); only the text of named leaves (names, literals) may differ.
    """
    out: Signature = []
    stack = [root]
    while stack:
        node = stack.pop()
        if (
            target is not None
            and transform is not None
            and node.start_byte == target.start_byte
            and node.end_byte == target.end_byte
            and node.id == target.id
        ):
            out.extend(transform(node))
            continue
        out.append(entry(node))
        stack.extend(reversed(node.children))
    return out


@dataclass(frozen=True)
class Preorder:
    """A tree's :func:`signature` (``entries``), and for each node, by its position there: the
    position after its subtree (``ends``) and its byte span (``spans``); ``index`` gives the
    position of a node by its id."""

    entries: Signature
    index: dict[int, int]
    ends: list[int]
    spans: list[tuple[int, int]]

    @classmethod
    def of(cls, root: tree_sitter.Node) -> Preorder:
        entries: Signature = []
        index: dict[int, int] = {}
        ends: list[int] = []
        spans: list[tuple[int, int]] = []
        stack: list[tree_sitter.Node | int] = [root]
        while stack:
            item = stack.pop()
            if isinstance(item, int):  # every node of the subtree at ``item`` is listed
                ends[item] = len(entries)
                continue
            position = len(entries)
            entries.append(entry(item))
            index.setdefault(item.id, position)
            spans.append((item.start_byte, item.end_byte))
            ends.append(position + 1)
            stack.append(position)
            stack.extend(reversed(item.children))
        return cls(entries, index, ends, spans)

    def replaced(
        self,
        target: tree_sitter.Node | None,
        transform: Callable[[tree_sitter.Node], Signature] | None,
    ) -> Signature:
        """``signature(root, target, transform)`` of the tree this was made of, without walking
        it again."""
        if target is None or transform is None:
            return self.entries
        position = self.index.get(target.id)
        if position is None or self.spans[position] != (target.start_byte, target.end_byte):
            return self.entries
        return [
            *self.entries[:position],
            *transform(target),
            *self.entries[self.ends[position] :],
        ]


def has_signature(root: tree_sitter.Node, expected: Signature) -> bool:
    """``signature(root) == expected``, stopping at the first node that differs."""
    stack = [root]
    position = 0
    size = len(expected)
    while stack:
        node = stack.pop()
        if position >= size or expected[position] != (node.type, node.is_named, node.is_missing):
            return False
        position += 1
        stack.extend(reversed(node.children))
    return position == size


def error_count(root: tree_sitter.Node) -> int:
    return sum(1 for node in walk(root) if node.type == "ERROR" or node.is_missing)


def ancestors(node: tree_sitter.Node, src: Source) -> Iterator[tree_sitter.Node]:
    """The node's ancestors, nearest first (:meth:`Source.ancestors`)."""
    return src.ancestors(node)


def nearest(node: tree_sitter.Node, types: frozenset[str], src: Source) -> tree_sitter.Node | None:
    """The closest ancestor of one of these types, or None (:meth:`Source.nearest`)."""
    return src.nearest(node, types)


def is_field(parent: tree_sitter.Node, child: tree_sitter.Node, name: str) -> bool:
    """Whether ``child`` is (one of) ``parent``'s children under field ``name``."""
    return any(target.id == child.id for target in parent.children_by_field_name(name))


def named_children(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The named children that are not comments."""
    return [c for c in node.named_children if c.type not in COMMENT_TYPES]


def deny_by_parent(node: tree_sitter.Node, deny: dict[str, str | None], src: Source) -> bool:
    """Whether the parent's type is in ``deny`` and ``node`` is under the field it names (any
    field when None)."""
    parent = src.parent(node)
    if parent is None or parent.type not in deny:
        return False
    field = deny[parent.type]
    return field is None or is_field(parent, node, field)


def callee_name(call: tree_sitter.Node, src: Source) -> str:
    """The text of a call's ``function`` field ('' when it has none)."""
    function = call.child_by_field_name("function")
    return src.text(function) if function is not None else ""


def follows_error(before: Sequence[tree_sitter.Node]) -> bool:
    """Whether the last non-comment node of ``before`` is (or holds) a parse error."""
    for node in reversed(before):
        if node.type not in COMMENT_TYPES:
            return node.type == "ERROR" or node.is_missing or node.has_error
    return False


def errors_before(nodes: Sequence[tree_sitter.Node]) -> list[bool]:
    """``follows_error(nodes[:i])`` for every ``i`` (one pass, not one slice per position)."""
    out = []
    last = False
    for node in nodes:
        out.append(last)
        if node.type not in COMMENT_TYPES:
            last = node.type == "ERROR" or node.is_missing or node.has_error
    return out


def last_index_of(nodes: Sequence[tree_sitter.Node], types: frozenset[str]) -> int:
    """The index of the last node of one of these types (-1 when none): ``any(n.type in types
    for n in nodes[i:])`` is ``i <= last_index_of(nodes, types)``."""
    for index in range(len(nodes) - 1, -1, -1):
        if nodes[index].type in types:
            return index
    return -1


# --------------------------------------------------------------------------------------------
# Candidate edits and their verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """Text replacements (character spans of the old text) and the tree change they must make."""

    replacements: tuple[tuple[int, int, str], ...]
    target: tree_sitter.Node | None = None
    transform: Callable[[tree_sitter.Node], Signature] | None = None


def apply_text(code: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    parts: list[str] = []
    position = 0
    for start, end, text in sorted(replacements):
        parts.append(code[position:start])
        parts.append(text)
        position = end
    parts.append(code[position:])
    return "".join(parts)


def verified(src: Source, edit: Edit) -> str | None:
    """The rewritten text if it parses exactly as intended, else None."""
    new_code = apply_text(src.code, edit.replacements)
    if new_code == src.code:  # e.g. 5 == 5 swapped: not a rewrite
        return None
    expected = src.preorder().replaced(edit.target, edit.transform)
    if not has_signature(src.parse(new_code), expected):
        return None
    if src.prefix:  # the text as it is must not gain parse errors either
        plain = src.support.parser().parse(new_code.encode("utf-8", "surrogatepass")).root_node
        if error_count(plain) > src.plain_errors:
            return None
    return new_code


def indent_continuation(text: str, indent: str) -> str:
    """Every line after the first prefixed with ``indent`` (the first goes where the cursor is)."""
    lines = text.split("\n")
    return "\n".join([lines[0], *(indent + line if line else line for line in lines[1:])])
