"""No import cycle between any two modules of ``qdash``, function-level imports included.

Walks every module's syntax tree (not ``sys.modules``), so an import inside a function counts
as much as one at the top; an import under ``if TYPE_CHECKING:`` does not (it never runs).
An edge is an explicit import: ``from qdash.feeds import connection`` points at the module
``qdash.feeds.connection``, ``from qdash.feeds import Hub`` at the package ``qdash.feeds``.
"""

import ast
from pathlib import Path

QDASH = Path(__file__).resolve().parents[1] / "qdash"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in QDASH.rglob("*.py"):
        parts = list(path.relative_to(QDASH.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _targets(module: str, is_pkg: bool, node, modules) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_pkg else module.split(".")[:-1]
            here = here[: len(here) - (node.level - 1)]
            base = ".".join(here + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                 for a in node.names]
    found = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
        graph[module] = {t for node in ast.walk(tree)
                         if isinstance(node, ast.Import | ast.ImportFrom)
                         and id(node) not in skipped
                         for t in _targets(module, is_pkg, node, modules)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_walker_sees_a_cycle_and_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    g = import_graph()
    assert "qdash.store" in g and len(g) > 80
    # a function-level import is an edge: the CLI imports its commands inside functions
    assert any(t.startswith("qdash.") for t in g["qdash.cli"]) or any(
        k.startswith("qdash.cli.") for k in g)


def test_no_import_cycle_in_qdash():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
