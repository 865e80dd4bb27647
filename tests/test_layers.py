"""The package's layers, read from the source: every import, function-level ones included (they
hide cycles from Python but not from a reader), except those under ``if TYPE_CHECKING``.

    edge     cli, __main__, entry, settings      parse flags, load inputs, write outputs, render
    runner   api, audit, gate, runner            run checks, apply rules and the gate
    checks   predict, train, membership,         one subsystem each
             defense, backdoor
    core     models, data, lang, metrics, rules, what every check uses (check: the interface
             report, config, params, seed, io,       every check implements; params: how
             check, threads, executor                a setting is declared)
    base     errors, lazy (package exports), the package itself

A module imports from its own layer or below, and no two modules import each other, however
indirectly. docs/architecture.md draws the picture.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "codeaudit"

LAYERS: dict[str, tuple[str, ...]] = {
    "edge": ("codeaudit.cli", "codeaudit.__main__", "codeaudit.entry", "codeaudit.settings"),
    "runner": ("codeaudit.api", "codeaudit.audit", "codeaudit.gate", "codeaudit.runner"),
    "checks": (
        "codeaudit.predict",
        "codeaudit.train",
        "codeaudit.membership",
        "codeaudit.defense",
        "codeaudit.backdoor",
    ),
    "core": (
        "codeaudit.models",
        "codeaudit.data",
        "codeaudit.lang",
        "codeaudit.metrics",
        "codeaudit.rules",
        "codeaudit.report",
        "codeaudit.config",
        "codeaudit.seed",
        "codeaudit.io",
        "codeaudit.check",
        "codeaudit.params",
        "codeaudit.threads",
        "codeaudit.executor",
    ),
    "base": ("codeaudit.errors", "codeaudit.lazy", "codeaudit"),
}
RANK = {layer: rank for rank, layer in enumerate(reversed(list(LAYERS)))}  # base 0 ... edge 4


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The codeaudit modules ``name`` imports (a ``from package import submodule`` counts as the
    submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "codeaudit"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1]])
                base = f"{base}.{node.module}" if node.module else base
            if base.split(".")[0] != "codeaudit":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found - {name}


def layer_of(module: str) -> str:
    best, length = "base", -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > length and prefix != "codeaudit":
                best, length = layer, len(prefix)
    return best


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) & set(known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in modules() if m != "codeaudit" and layer_of(m) == "base"]
    assert unplaced == ["codeaudit.errors", "codeaudit.lazy"], f"place these in LAYERS: {unplaced}"


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
        for a, targets in graph().items()
        for b in targets
        if RANK[layer_of(b)] > RANK[layer_of(a)]
    )
    assert not upward, "\n".join(upward)


def test_no_import_cycles_even_through_function_level_imports() -> None:
    found = cycles(graph())
    assert not found, found


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The graph would miss the cycles this test exists for if it only read top-level imports."""
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from codeaudit.cli import main\n"
        "def f():\n"
        "    from codeaudit.models import checkpoint\n"
        "    from . import errors\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {"codeaudit.models.checkpoint": path, "codeaudit.errors": path}
    found = imports("codeaudit.x", path, known)
    assert found == {"codeaudit.models.checkpoint", "codeaudit.errors"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
