"""The import arrows point one way: a walk over every import of the package (at module level,
inside functions, under `if TYPE_CHECKING`), failing on an upward arrow or on a circle.

Layers, bottom to top (docs/architecture.md):
  api      - types, units, names           (src/execplanner/api)
  engine   - the pure planning engine      (src/execplanner/engine)
  cluster  - Kubernetes client and feed    (src/execplanner/cluster)
  operator, planner                        (operator/, planner/): neither imports the other
  cli                                      (talks HTTP; reads units through api)
  the local tools: demo, localrun, devidentity
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"execplanner": ROOT / "src/execplanner", "execplanner.operator": ROOT / "operator",
           "execplanner.planner": ROOT / "planner"}
RANK = {"api": 0, "engine": 1, "cluster": 2, "operator": 3, "planner": 3, "cli": 3,
        "tools": 4, "": 0}
TOOLS = {"demo", "localrun", "devidentity"}
MAY_IMPORT = {"cli": {"cli", "api", ""}}  # besides what the ranks allow


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "execplanner" and parts and parts[0] in ("operator", "planner"):
                continue
            found[name] = path
    return found


MODULES = modules()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str, path: Path) -> set[str]:
    """The execplanner modules `name` imports, resolved to modules where a name is one."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(name, path)
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in MODULES and t != name)
    return out


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    return "tools" if name in TOOLS else name


def test_the_walk_sees_the_layers():
    # Guards the test itself: each layer is found, and known arrows are seen.
    assert {layer(m) for m in MODULES} >= {"api", "engine", "cluster", "operator", "planner", "cli"}
    assert "execplanner.api.plan" in GRAPH["execplanner.engine.specs"]
    assert "execplanner.engine.fit" in GRAPH["execplanner.engine.offers"]


def test_no_arrow_points_up_or_across():
    wrong = []
    for source, targets in GRAPH.items():
        a = layer(source)
        for target in targets:
            b = layer(target)
            if a == b:
                continue
            allowed = b in MAY_IMPORT[a] if a in MAY_IMPORT else RANK[b] < RANK[a]
            if not allowed:
                wrong.append(f"{source} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
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
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("source, target", [("execplanner.engine.fit", "execplanner.engine.offers"),
                                            ("execplanner.operator.plans", "execplanner.planner.tasks")])
def test_the_checks_would_fail(source, target, monkeypatch):
    # An added arrow upward (or across) is caught, as a circle or against the layers.
    monkeypatch.setitem(GRAPH, source, GRAPH[source] | {target})
    with pytest.raises(AssertionError):
        test_no_circle()
        test_no_arrow_points_up_or_across()
