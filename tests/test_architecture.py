"""The package's import graph: no cycle between subpackages and no private name imported across modules.

Imports are read from the source with :mod:`ast` (also those inside functions), so a
lazy import cannot hide an arrow that climbs back up the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crm_analysis"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [a.name for a in node.names], node.lineno))
    return [f for f in found if f[0] == "crm_analysis" or f[0].startswith("crm_analysis.")]


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _unit(module: str) -> str:
    """The package-level unit of a module: ``crm_analysis.churn.model`` -> ``churn``; top-level modules are units."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "crm_analysis"


def _is_package(name: str) -> bool:
    return (PACKAGE / name).is_dir()


def package_graph() -> dict[str, set[str]]:
    """Arrows between subpackages and top-level modules (``churn -> campaigns``), from every import."""
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        src = _unit(module)
        for target, names, _ in _imports(path):
            dst = _unit(target)
            if target == "crm_analysis":  # `from crm_analysis import x`: x's own unit
                for name in names:
                    if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists():
                        graph.setdefault(src, set()).add(name)
                continue
            if dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def _path_between(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    seen, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w not in seen:
                seen[w] = v
                queue.append(w)
    path, v = [], goal
    while v is not None:
        path.append(v)
        v = seen.get(v)
    return path[::-1]


def test_no_import_cycle_between_packages():
    graph = package_graph()
    cycles = _cycles(graph)
    shown = [" -> ".join(_path_between(graph, c[0], c[1]) + _path_between(graph, c[1], c[0])[1:]) for c in cycles]
    assert not cycles, "package-level import cycles:\n" + "\n".join(shown)


def test_no_private_name_imported_across_modules():
    found = []
    for module, path in _modules().items():
        for target, names, line in _imports(path):
            if target.rpartition(".")[2].startswith("_") and target != "crm_analysis._version":
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports private module {target}")
            for name in names:
                if name.startswith("_") and not name.startswith("__") and target != module:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}.{name}")
    assert not found, "private names used outside their module:\n" + "\n".join(found)


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
