"""The import graph of core and app has no cycle, counting every import.

import-linter (tests/core/test_no_qt.py) sees module-level and function-level
imports but not ``importlib.import_module("literal")``, and it checks layers,
not cycles. This test reads every module with ``ast`` and builds the graph from
``import``/``from ... import`` statements anywhere in a module (inside
functions and ``if TYPE_CHECKING:`` blocks too) and from ``import_module``
calls with a literal name, then looks for strongly connected components.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# package name -> its folder; core.resources lives in resources/ (pyproject.toml's package-dir)
PACKAGES = {"core": "core", "app": "app", "core.resources": "resources"}


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for pkg, folder in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = pkg.split(".") + list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import name``: the submodule pkg.name when there is one, else pkg
            names += [f"{base}.{a.name}|{base}" for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.append(node.args[0].value)
    return names


def import_graph() -> dict[str, set[str]]:
    mods = _modules()

    def owner(name: str) -> str | None:  # the module a dotted name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, (path, is_pkg) in mods.items():
        package = mod if is_pkg else mod.rpartition(".")[0]
        for name in _imported_names(ast.parse(path.read_text(), str(path)), package):
            submodule, _, base = name.partition("|")
            target = submodule if submodule in mods else owner(base or submodule)
            if target is not None and target != mod:
                graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return found


def test_the_checker_finds_a_cycle_and_its_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse(
        "import x.y\ndef f():\n    from . import z\n    from ..w import v\nimportlib.import_module('p.q')\n"
    )
    names = _imported_names(tree, "core.ring")
    assert names == ["x.y", "core.ring.z|core.ring", "core.w.v|core.w", "p.q"]


def test_core_and_app_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 100 and graph["core.cli"], "the graph should cover every module"
    assert "core.resources" in graph["core.training.config"]
    assert cycles(graph) == []


def test_core_never_imports_app_not_even_by_name():
    graph = import_graph()
    reaching = {
        m: sorted(t for t in targets if t.split(".")[0] == "app")
        for m, targets in graph.items()
        if m.split(".")[0] == "core"
    }
    assert {m: t for m, t in reaching.items() if t} == {}


def test_the_ring_imports_neither_training_nor_the_site():
    graph = import_graph()
    bad = {
        m: sorted(t for t in targets if t.startswith(("core.training", "core.site", "core.model")))
        for m, targets in graph.items()
        if m.startswith("core.ring")
    }
    assert {m: t for m, t in bad.items() if t} == {}
