"""No import cycles inside ``lepton_nb/`` (issue 18).

The package's own imports are read with :mod:`ast` (nothing is imported or run) and drawn as a
graph of modules; every strongly connected component of more than one module is a cycle.

What counts as an edge ``a -> b`` (both modules of lepton_nb):

- every ``import`` statement in ``a``, at module level AND inside functions or methods: an
  import deferred into a function is still a dependency (``a`` cannot work without ``b``), and
  laziness here is for heavy third-party packages (torch, dask), never a reason for two of our
  own modules to need each other;
- ``import lepton_nb.x.y`` -> ``lepton_nb.x.y``; ``from lepton_nb.x import y`` -> the submodule
  ``lepton_nb.x.y`` when ``y`` is one, else ``lepton_nb.x`` (its ``__init__``);
  relative imports (``from . import y``, ``from ..x import y``) are resolved the same way;
- NOT counted: imports under ``if TYPE_CHECKING:`` (never run), the implicit import of a
  module's parent packages (the ordinary package/submodule relation), and names a package's
  ``__init__`` loads lazily from its table (``lepton_nb._lazy``: the package's own submodules);
- ``importlib.import_module("lepton_nb.x")`` of a literal name counts like ``import`` (so a
  cycle cannot hide behind it).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import lepton_nb

ROOT = Path(lepton_nb.__file__).resolve().parent
PKG = "lepton_nb"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except the bodies of ``if TYPE_CHECKING:``; an
    ``importlib.import_module("lepton_nb...")`` of a literal name counts as ``import`` of it."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        literal = _import_module_literal(node)
        if literal is not None:
            yield ast.Import(names=[ast.alias(name=literal)], lineno=getattr(node, "lineno", 0))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _import_module_literal(node: ast.AST) -> str | None:
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    value = node.args[0].value
    if name in ("import_module", "__import__") and isinstance(value, str):
        return value if value.startswith(f"{PKG}.") else None
    return None


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    while name and name not in modules:  # import a.b.c of a non-module c
                        name = name.rpartition(".")[0]
                    targets.append(name)
            else:
                base = _resolve_from(module, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target in modules and target != module:
                    graph[module].setdefault(target, node.lineno)
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def shortest_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth first, inside it)."""
    members = set(component)
    start = component[0]
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [*reversed(path), start]
                if child not in came:
                    came[child] = node
                    nxt.append(child)
        frontier = nxt
    return component  # unreachable for a strongly connected component


def describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    cycle = shortest_cycle(graph, component)
    hops = "\n".join(
        f"    {a} -> {b}  ({a.replace('.', '/')}.py line {graph[a][b]})"
        for a, b in itertools.pairwise(cycle)
    )
    return f"  {len(component)} modules: {', '.join(component)}\n  e.g.\n{hops}"


def test_lepton_nb_has_no_import_cycles() -> None:
    graph = import_graph()
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles in lepton_nb/ (move code to where it belongs):\n" + (
        "\n".join(describe(graph, c) for c in cycles)
    )


def test_the_walk_sees_relative_function_level_and_skips_type_checking(tmp_path: Path) -> None:
    """The reader itself, on known imports of the real package (so it cannot pass vacuously)."""
    graph = import_graph()
    assert len(graph) > 100, "the walk found too few modules"
    # module-level absolute: cluster/__init__ imports its handle
    assert "lepton_nb.cluster._handle" in graph["lepton_nb.cluster"]
    # a TYPE_CHECKING-only import is not an edge: lepton_nb/__init__ names its submodules there
    assert "lepton_nb.train" not in graph["lepton_nb"]


def test_import_module_of_a_literal_counts() -> None:
    tree = ast.parse("import importlib\ndef f():\n    importlib.import_module('lepton_nb.cli')\n")
    names = [a.name for node in _imports(tree) if isinstance(node, ast.Import) for a in node.names]
    assert sorted(names) == ["importlib", "lepton_nb.cli"]


def test_a_made_up_cycle_is_found() -> None:
    graph: dict[str, dict[str, int]] = {
        "p.a": {"p.b": 1},
        "p.b": {"p.c": 2},
        "p.c": {"p.a": 3, "p.d": 4},
        "p.d": {},
        "p.e": {"p.f": 1},
        "p.f": {"p.e": 1},
    }
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"], ["p.e", "p.f"]]
    assert shortest_cycle(graph, ["p.a", "p.b", "p.c"]) == ["p.a", "p.b", "p.c", "p.a"]
