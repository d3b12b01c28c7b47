"""The layering the design relies on, checked from the source (AST), not from a running import.

- Inside ``accel_sim`` no module reaches itself through imports, whether they sit at module
  level, inside a function or under ``TYPE_CHECKING``.
- ``workloads`` (the ground floor: model shapes and op graphs) imports nothing from
  ``pruning`` or ``studies``; ``safeio`` imports nothing from the project at all; the
  simulator never imports torch.
- Numba is imported only under ``accel_sim/kernels``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("accel_sim", "pruning", "workloads", "studies", "safeio")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / package).rglob("*.py"))}


def imported(path: Path, name: str) -> set[str]:
    """Every module name an import statement anywhere in ``path`` names (``from a import b``
    names ``a`` and, when it is a module, ``a.b``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base != name:  # a package importing its own submodules
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(package: str) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imported(path, name) & known.keys() for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself
    (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_everywhere() -> None:
    """The checker itself: function-level and TYPE_CHECKING imports count."""
    graph = import_graph("accel_sim")
    assert "accel_sim.datapaths.base" in graph["accel_sim.datapaths.array"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]


def test_no_import_cycle_inside_accel_sim() -> None:
    assert cycles(import_graph("accel_sim")) == []


def test_lower_layers_import_nothing_above_them() -> None:
    forbidden = {
        "workloads": ("pruning", "studies", "accel_sim"),
        "safeio": ("accel_sim", "pruning", "workloads", "studies"),
        "accel_sim": ("pruning", "studies", "torch", "transformers"),
    }
    offences = []
    for package, above in forbidden.items():
        for name, path in modules(package).items():
            for target in imported(path, name):
                if target.split(".")[0] in above:
                    offences.append(f"{name} imports {target}")
    assert offences == []


def test_numba_only_in_kernels() -> None:
    offences = [
        name
        for package in PACKAGES
        for name, path in modules(package).items()
        if not name.startswith("accel_sim.kernels")
        and any(t.split(".")[0] == "numba" for t in imported(path, name))
    ]
    assert offences == []
