"""Package structure: the modules of mfgsolve import each other without cycles.

The import graph is read from the source with :mod:`ast` (nothing is imported): one node per
module, an edge A -> B for every ``import`` / ``from ... import`` statement anywhere in A, at module
level or inside a function (a lazy import still ties the two modules together). Imports of modules
outside the package, and imports under ``if TYPE_CHECKING:``, are ignored. A cycle is a strongly
connected component of more than one module, or a module that imports itself.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mfgsolve"


def _module_name(root: Path, path: Path) -> str:
    """``pkg/a.py`` -> ``pkg.a``; ``pkg/sub/__init__.py`` -> ``pkg.sub``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any ``X.TYPE_CHECKING``)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Imports(ast.NodeVisitor):
    """Collect the modules named by every import statement, skipping ``if TYPE_CHECKING:``."""

    def __init__(self, module: str, is_package: bool, modules: set[str], root: str):
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.root = root
        self.targets: set[str] = set()

    def _inside(self, name: str) -> bool:
        return name == self.root or name.startswith(self.root + ".")

    def _add(self, name: str) -> None:
        """Add ``name`` (or its longest prefix that is a module) when it is in the package."""
        if not self._inside(name):
            return
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        if name:
            self.targets.add(name)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:  # the else branch runs at run time
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".") if self.package else []
            up = node.level - 1
            if up > len(parts):
                return  # beyond the top-level package: not ours
            base_parts = parts[: len(parts) - up]
            if node.module:
                base_parts = [*base_parts, *node.module.split(".")]
            base = ".".join(base_parts)
        else:
            base = node.module or ""
        if not base or not self._inside(base):
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if alias.name != "*" and sub in self.modules:
                self.targets.add(sub)
            else:
                self._add(base)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """The import graph of the package in ``package_dir``, read from the source with ``ast``."""
    package_dir = Path(package_dir)
    root = package_dir.name
    files = {
        _module_name(package_dir, p): p
        for p in sorted(package_dir.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        visitor = _Imports(module, path.name == "__init__.py", modules, root)
        visitor.visit(tree)
        graph[module] = visitor.targets
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; each component sorted, components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_path(graph: dict[str, set[str]], nodes: set[str], a: str, targets: set[str]):
    """Shortest path from ``a`` (excluded) to the nearest node of ``targets``, inside ``nodes``."""
    previous: dict[str, str] = {}
    queue = deque([a])
    seen = {a}
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & nodes):
            if child in targets:
                path = [child]
                while node != a:
                    path.append(node)
                    node = previous[node]
                return path[::-1]
            if child not in seen:
                seen.add(child)
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no path from {a} inside its component")  # pragma: no cover


def _chain(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A closed walk along real import edges through every module of ``component``.

    For a simple cycle this is the cycle itself; otherwise it goes from the first module to the
    nearest unvisited one, and so on, and back to the first.
    """
    nodes = set(component)
    start = component[0]
    walk = [start]
    left = nodes - {start}
    while left:
        step = _shortest_path(graph, nodes, walk[-1], left)
        walk.extend(step)
        left -= set(step)
    walk.extend(_shortest_path(graph, nodes, walk[-1], {start}))
    return walk


def import_cycles(package_dir: Path) -> list[str]:
    """The package's import cycles, each a readable chain ``a -> b -> c -> a``, sorted."""
    graph = import_graph(package_dir)
    cycles = []
    for component in _strongly_connected(graph):
        if len(component) > 1:
            cycles.append(" -> ".join(_chain(graph, component)))
        elif component[0] in graph[component[0]]:
            cycles.append(f"{component[0]} -> {component[0]}")
    return sorted(cycles)


def test_package_has_no_import_cycle():
    cycles = import_cycles(PACKAGE)
    assert not cycles, f"{len(cycles)} import cycle(s) in mfgsolve/ (lazy imports count):\n" + (
        "\n".join(f"  {c}" for c in cycles)
    )


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    return root / "pkg"


_DELIBERATE = {
    # the package's __init__ imports a: an implicit edge a -> pkg (parent package) would make a
    # false cycle pkg -> pkg.a -> pkg
    "pkg/__init__.py": "from .a import A\n",
    "pkg/a.py": """
        import os.path

        import numpy as np

        import pkg.b
        from pkg import c

        A = 1
    """,
    # the cycle's second half is a lazy import inside a function
    "pkg/b.py": """
        def f():
            from pkg import a

            return a.A
    """,
    # a TYPE_CHECKING-only import of a: must not make pkg.a <-> pkg.c a cycle
    "pkg/c.py": """
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from pkg.a import A
        else:
            import json
    """,
    "pkg/selfish.py": """
        def g():
            from pkg import selfish

            return selfish
    """,
    # a relative-import cycle in a subpackage: x -> y (from .y import), y -> x (from . import x)
    "pkg/sub/__init__.py": "from .x import X\n",
    "pkg/sub/x.py": """
        from ..b import f
        from .y import Y

        X = f
    """,
    "pkg/sub/y.py": """
        Y = 2


        def h():
            from . import x

            return x.X
    """,
}


def test_cycle_detector_finds_a_deliberate_cycle(tmp_path):
    package = _write_package(tmp_path / "cyclic", _DELIBERATE)
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b", "pkg.c"},
        "pkg.b": {"pkg.a"},
        "pkg.c": set(),
        "pkg.selfish": {"pkg.selfish"},
        "pkg.sub": {"pkg.sub.x"},
        "pkg.sub.x": {"pkg.b", "pkg.sub.y"},
        "pkg.sub.y": {"pkg.sub.x"},
    }
    assert import_cycles(package) == [
        "pkg.a -> pkg.b -> pkg.a",
        "pkg.selfish -> pkg.selfish",
        "pkg.sub.x -> pkg.sub.y -> pkg.sub.x",
    ]

    acyclic = dict(_DELIBERATE)
    acyclic["pkg/b.py"] = "def f():\n    return 1\n"
    acyclic["pkg/selfish.py"] = "def g():\n    return 2\n"
    acyclic["pkg/sub/y.py"] = "Y = 2\n"
    assert import_cycles(_write_package(tmp_path / "acyclic", acyclic)) == []


def test_cycle_chain_walks_a_component_that_is_not_one_simple_cycle(tmp_path):
    # a <-> b and a <-> c: one component with no simple cycle through all three modules
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from . import b, c\n",
            "pkg/b.py": "from . import a\n",
            "pkg/c.py": "from .a import name\n",
        },
    )
    assert import_cycles(package) == ["pkg.a -> pkg.b -> pkg.a -> pkg.c -> pkg.a"]
