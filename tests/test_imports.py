"""No module of placer imports another in a cycle, function-local imports included.

Imports under ``if TYPE_CHECKING:`` are left out: type checkers read them, Python never
runs them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import placer
from placer.graphs import strongly_connected_components

ROOT = Path(placer.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("placer", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Line numbers of the statements under ``if TYPE_CHECKING:``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """Each module of placer and the modules of placer it imports anywhere in its body.

    ``from placer.solvers import dp`` is an import of ``placer.solvers.dp.search``, not of the
    package (whose ``__init__`` only runs first).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("placer"):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                graph[name].update(n for n in names if n in modules)
                if node.module in modules and any(n not in modules for n in names):
                    graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
    for name in graph:
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module."""
    names = sorted(graph)
    number = {name: i for i, name in enumerate(names)}
    components = strongly_connected_components(
        range(len(names)), lambda v: [number[w] for w in graph[names[v]]]
    )
    return sorted(sorted(names[v] for v in c) for c in components if len(c) > 1)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    # placer.solvers registers its solvers with imports inside functions
    assert "placer.solvers.dp.search" in graph["placer.solvers"]
