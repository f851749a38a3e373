"""No module-level import cycle inside ``gensight``.

A cycle makes import order matter (a module sees its partner half-initialised) and ties modules
that should be separable. The graph is built from the source with ``ast``: only imports that run
when a module is imported count — module-level statements, including those under a module-level
``try`` or ``if`` — while imports under ``if TYPE_CHECKING:`` and inside functions or classes do
not. ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``.
Implicit parent-package imports are not edges (a package ``__init__`` may import its children).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> source folder (setuptools' package-dir mapping in pyproject.toml)
PACKAGE_DIRS = {
    "gensight": ROOT / "core",
    "gensight.instrumentation": ROOT / "instrumentation",
    "gensight.processor": ROOT / "processor",
}


def _modules() -> dict[str, Path]:
    """Every module of ``gensight`` by dotted name (a package by the name of its ``__init__``)."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run at import time: module level, through ``if``/``try``/``with``
    blocks, but not under ``if TYPE_CHECKING:`` nor inside a function or class body."""
    out: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                pending.extend(block)
        elif isinstance(node, ast.With):
            pending.extend(node.body)
    return out


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def import_graph() -> dict[str, set[str]]:
    """module -> the ``gensight`` modules it imports at module level."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _module_level_imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = _package_of(name, path).split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # ``import a.b.c`` binds ``a`` but runs a.b.c: the deepest known module is the edge
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_the_fake_providers():
    graph = import_graph()
    assert "gensight.fakes.openai" in graph and "gensight.processor.records" in graph
    assert "gensight.fakes.server" in graph["gensight.fakes.openai"]


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_and_function_imports_are_not_edges():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import gensight.pricing\n"
        "if TYPE_CHECKING:\n    import gensight.privacy\n"
        "def f():\n    import gensight.cli\n"
        "try:\n    import gensight.demo\nexcept ImportError:\n    pass\n"
    )
    names = sorted(a.name for node in _module_level_imports(tree) for a in node.names)
    assert names == ["TYPE_CHECKING", "gensight.demo", "gensight.pricing"]


def test_no_module_level_import_cycle_in_gensight():
    cycle = find_cycle(import_graph())
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle or [])


def test_the_two_fake_providers_do_not_import_each_other_at_all():
    """Not even lazily or for type checking: both depend on the shared route protocol instead."""
    for module, other in (("openai", "anthropic"), ("anthropic", "openai")):
        tree = ast.parse((ROOT / "core" / "fakes" / f"{module}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert f"gensight.fakes.{other}" not in imported, f"gensight.fakes.{module} imports {other}"
        from_package = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                        and n.module == "gensight.fakes" for a in n.names]
        assert other not in from_package
