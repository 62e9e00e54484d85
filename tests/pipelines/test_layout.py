"""The structure of ``pipelines/`` as drawn from its imports (issue 21): no import cycle, no
upward import between layers, the destination base importing none of its implementations, no
function-level import of solarsync's own modules but the few lazy loads named here, and no
module importing another's private names. A failure names the import to move."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: lowest first; a module may import its own layer and the layers before it
LAYERS: list[tuple[str, ...]] = [
    (
        "pipelines.settings",
        "pipelines.sync_state",
        "pipelines.results",
        "pipelines.registry",
        "pipelines.accounts",
    ),
    ("pipelines.views",),
    ("pipelines.destinations",),
    ("pipelines.history", "pipelines.journal", "pipelines.upgrade"),
    ("pipelines.sync", "pipelines.poll", "pipelines.status"),
    ("pipelines.report",),
    ("pipelines.commands", "pipelines.demo", "pipelines.dagster_defs", "pipelines.cli"),
]
#: function-level imports of solarsync's modules that are lazy loads, not cycle dodges: the
#: command line parses before dlt is configured (its logging) and ``--help`` loads nothing else
LAZY = {("pipelines.cli", "pipelines.settings"), ("pipelines.cli", "pipelines.registry"),
        ("pipelines.cli", "pipelines.commands")}  # fmt: skip


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "pipelines").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = modules()


def target(name: str) -> str | None:
    """The solarsync module an import names (a name inside a module: that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[str, bool, list[str]]]:
    """(imported module, inside a function, names imported) of every import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function |= {id(n) for n in ast.walk(node) if n is not node}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = target(alias.name) if alias.name.startswith("pipelines") else None
                if found:
                    out.append((found, id(node) in in_function, []))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("pipelines"):
                continue
            for alias in node.names:
                found = target(f"{node.module}.{alias.name}")
                if found:
                    names = [] if found == f"{node.module}.{alias.name}" else [alias.name]
                    out.append((found, id(node) in in_function, names))
    return out


EDGES = {m: [(t, f, n) for t, f, n in imports(m) if t != m] for m in MODULES}


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    if module == "pipelines" or module == "pipelines.__main__":
        return len(LAYERS)
    raise AssertionError(f"{module} is in no layer of tests/pipelines/test_layout.py")


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w, _, _ in EDGES[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    upward = [t for t, _, _ in EDGES[module] if layer(t) > layer(module)]
    assert upward == [], f"{module} (layer {layer(module)}) imports a later layer: {upward}"


def test_the_destination_base_imports_no_implementation():
    base = [t for t, _, _ in EDGES["pipelines.destinations.base"]]
    assert [t for t in base if t.startswith("pipelines.destinations")] == []


def test_no_function_level_import_of_solarsync_modules_but_the_lazy_loads():
    found = {(m, t) for m, edges in EDGES.items() for t, inner, _ in edges if inner}
    assert found <= LAZY, sorted(found - LAZY)


def test_no_module_imports_another_modules_private_names():
    private = [
        (m, t, name)
        for m, edges in EDGES.items()
        for t, _, names in edges
        for name in names
        if name.startswith("_")
    ]
    assert private == []
