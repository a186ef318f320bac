"""The architecture, checked: factory's imports point only down the stage layers, and no
module or function grows past the size a reader can hold.

Every module's imports are read with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` included), each resolved to the module it names. The checker is tested here on
small synthetic trees too, so it is known to be able to fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The layers, top to bottom: a module may import only from its own layer or a lower one. Each
# layer holds one or more units: a subpackage of factory or a top-level module.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("factory.cli",)),
    ("pipeline", ("factory.pipeline",)),
    ("publish", ("factory.publish",)),
    ("image", ("factory.image",)),
    ("validate", ("factory.validate",)),
    ("build", ("factory.build",)),
    ("engine", ("factory.engine",)),
    ("distribution", ("factory.distribution",)),
    ("model", ("factory.model",)),
    ("util", ("factory.util", "factory.resources")),
    # the root package is empty: it sits at the bottom, where anything may import it
    ("errors", ("factory.errors", "factory")),
)

# Modules that belong to a unit other than the one their name says.
UNIT_OF: Mapping[str, str] = {"factory.__main__": "factory.cli"}

# Imports between two different units of one layer, allowed by name (importer unit, imported
# unit) with the reason. Keep it short: a pair belongs here only when neither unit is "lower".
SAME_LAYER_ALLOWED: Mapping[tuple[str, str], str] = {}

MAX_MODULE_LINES = 450  # a module must stay under this many lines
MAX_FUNCTION_LINES = 60  # a function (outside cli/) may have at most this many
SIZE_EXEMPT_UNITS = ("factory.cli",)  # functions of the command line only (modules still count)


@dataclass(frozen=True, kw_only=True)
class Import:
    importer: str
    imported: str
    line: int


@dataclass(frozen=True, kw_only=True, repr=False)
class Tree:
    """The modules of one package on disk and the imports between them."""

    modules: Mapping[str, Path]
    imports: tuple[Import, ...]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(modules: Mapping[str, Path], name: str) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def _absolute(importer: str, node: ast.ImportFrom, modules: Mapping[str, Path]) -> str:
    """The absolute module a `from X import ...` starts from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(modules, importer):
        base.pop()
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _named(
    importer: str, node: ast.Import | ast.ImportFrom, modules: Mapping[str, Path]
) -> Iterable[str]:
    """The modules of this tree one import statement names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules:
                yield alias.name
    else:
        source = _absolute(importer, node, modules)
        found: list[str] = []
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in modules:
                found.append(submodule)  # `from factory.pkg import mod`
            elif source in modules:
                found.append(source)  # `from factory.pkg.mod import name`
        yield from dict.fromkeys(found)  # a module once per statement


def scan(root: Path, package: str) -> Tree:
    """Every module under root/package and every import of one of them by another."""
    modules = {module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}
    imports: list[Import] = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for imported in _named(name, node, modules):
                imports.append(Import(importer=name, imported=imported, line=node.lineno))
    return Tree(modules=modules, imports=tuple(imports))


def unit_of(module: str, units: Iterable[str], overrides: Mapping[str, str]) -> str | None:
    if module in overrides:
        return overrides[module]
    matching = [u for u in units if module == u or module.startswith(u + ".")]
    return max(matching, key=len) if matching else None


def layering_errors(
    tree: Tree,
    layers: Sequence[tuple[str, Sequence[str]]],
    *,
    overrides: Mapping[str, str] = UNIT_OF,
    allowed: Mapping[tuple[str, str], str] = SAME_LAYER_ALLOWED,
) -> list[str]:
    """One message per module in no layer, upward import and unallowed same-layer import."""
    rank = {unit: (index, layer) for index, (layer, units) in enumerate(layers) for unit in units}
    errors: list[str] = []
    for module in tree.modules:
        if unit_of(module, rank, overrides) is None:
            errors.append(f"{module} is in no layer: add its package to LAYERS.")
    for imp in tree.imports:
        low, high = unit_of(imp.importer, rank, overrides), unit_of(imp.imported, rank, overrides)
        if low is None or high is None or low == high:
            continue
        (low_rank, low_layer), (high_rank, high_layer) = rank[low], rank[high]
        where = f"{imp.importer} (layer {low_layer}, line {imp.line}) imports {imp.imported}"
        if high_rank < low_rank:
            errors.append(
                f"{where} (layer {high_layer}), which is above it: imports point down the "
                "layers only; move the shared code down or the importer up."
            )
        elif high_rank == low_rank and (low, high) not in allowed:
            errors.append(
                f"{where} (layer {high_layer} too): {low} and {high} are different packages of "
                "one layer; move the shared code down a layer or name the pair in "
                "SAME_LAYER_ALLOWED with the reason."
            )
    return errors


def cycles(tree: Tree) -> list[list[str]]:
    """One cycle of modules (first module repeated at the end) per strongly connected set."""
    graph: dict[str, set[str]] = {m: set() for m in tree.modules}
    for imp in tree.imports:
        graph[imp.importer].add(imp.imported)
    found: list[list[str]] = []
    for component in _strongly_connected(graph):
        start = min(component)
        if len(component) > 1 or start in graph[start]:
            found.append(_cycle_through(start, graph, component))
    return sorted(found)


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_through(start: str, graph: Mapping[str, set[str]], within: set[str]) -> list[str]:
    """The shortest path start → ... → start inside one strongly connected set."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for succ in sorted(graph[node] & within):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if succ not in came_from:
                    came_from[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")


def size_errors(tree: Tree, *, exempt_units: Sequence[str] = SIZE_EXEMPT_UNITS) -> list[str]:
    """One message per module of MAX_MODULE_LINES lines or more and per function (nested
    ones included, cli/ excepted) of more than MAX_FUNCTION_LINES."""
    errors: list[str] = []
    for module, path in tree.modules.items():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines >= MAX_MODULE_LINES:
            errors.append(
                f"{module} ({path.name}) has {lines} lines: split it below {MAX_MODULE_LINES}."
            )
        if unit_of(module, exempt_units, {}) is not None:
            continue
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    errors.append(
                        f"{module}.{node.name} (line {node.lineno}) has {length} lines: "
                        f"split it to at most {MAX_FUNCTION_LINES}."
                    )
    return errors


# --- factory itself -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def factory_tree() -> Tree:
    return scan(ROOT, "factory")


def test_imports_point_down_the_layers(factory_tree: Tree) -> None:
    errors = layering_errors(factory_tree, LAYERS)
    assert not errors, "\n".join(errors)


def test_no_import_cycle(factory_tree: Tree) -> None:
    found = cycles(factory_tree)
    assert not found, "import cycles:\n" + "\n".join(" → ".join(c) for c in found)


def test_modules_and_functions_stay_small(factory_tree: Tree) -> None:
    errors = size_errors(factory_tree)
    assert not errors, "\n".join(errors)


def test_every_layer_unit_exists(factory_tree: Tree) -> None:
    units = [unit for _, layer_units in LAYERS for unit in layer_units]
    assert len(units) == len(set(units))
    missing = [u for u in units if u not in factory_tree.modules]
    assert not missing, f"LAYERS names units that do not exist: {missing}"


def test_the_scan_reads_factory(factory_tree: Tree) -> None:
    """A resolver that silently read nothing would pass every check above."""
    edges = {(i.importer, i.imported) for i in factory_tree.imports}
    assert ("factory.__main__", "factory.cli") in edges  # from factory.cli import main
    assert ("factory.cli", "factory.cli.bazel_cmd") in edges  # from factory.cli import (...)
    assert ("factory.model.config", "factory.errors") in edges  # from factory.errors import X
    assert ("factory.publish.supply", "factory.resources") in edges  # from factory import resources


# --- the checker, on synthetic trees -------------------------------------------------------

TOY_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("top", ("pkg.top",)),
    ("middle", ("pkg.left", "pkg.right")),
    ("bottom", ("pkg.base", "pkg")),
)


def toy(tmp_path: Path, files: Mapping[str, str]) -> Tree:
    """A package `pkg` with the given modules (path under pkg/ → source)."""
    for name in ["__init__.py", "top/__init__.py", "left/__init__.py", "right/__init__.py"]:
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).touch()
    (tmp_path / "pkg" / "base.py").touch()
    for name, text in files.items():
        (tmp_path / "pkg" / name).write_text(text)
    return scan(tmp_path, "pkg")


def test_clean_tree_passes(tmp_path: Path) -> None:
    tree = toy(
        tmp_path,
        {
            "top/run.py": "from pkg.left import a\nimport pkg.base\n",
            "left/a.py": "from . import b\nfrom pkg import base\n",
            "left/b.py": "from pkg.base import thing\n",
        },
    )
    assert layering_errors(tree, TOY_LAYERS, overrides={}, allowed={}) == []
    assert cycles(tree) == []
    edges = {(i.importer, i.imported) for i in tree.imports}
    assert edges == {
        ("pkg.top.run", "pkg.left.a"),
        ("pkg.top.run", "pkg.base"),
        ("pkg.left.a", "pkg.left.b"),
        ("pkg.left.a", "pkg.base"),
        ("pkg.left.b", "pkg.base"),
    }


def test_upward_import_fails_naming_both_modules_and_layers(tmp_path: Path) -> None:
    tree = toy(tmp_path, {"top/run.py": "", "base.py": "from pkg.top.run import go\n"})
    [error] = layering_errors(tree, TOY_LAYERS, overrides={}, allowed={})
    assert "pkg.base (layer bottom, line 1) imports pkg.top.run (layer top)" in error
    assert "above it" in error


def test_import_inside_a_function_counts(tmp_path: Path) -> None:
    source = "def late() -> None:\n    if True:\n        import pkg.top.run\n"
    tree = toy(tmp_path, {"top/run.py": "", "base.py": source})
    [error] = layering_errors(tree, TOY_LAYERS, overrides={}, allowed={})
    assert error.startswith("pkg.base (layer bottom, line 3) imports pkg.top.run (layer top)")


def test_same_layer_import_fails_unless_allowed(tmp_path: Path) -> None:
    tree = toy(tmp_path, {"left/a.py": "from pkg.right import b\n", "right/b.py": ""})
    [error] = layering_errors(tree, TOY_LAYERS, overrides={}, allowed={})
    assert "pkg.left.a (layer middle, line 1) imports pkg.right.b (layer middle too)" in error
    assert "SAME_LAYER_ALLOWED" in error
    allowed = {("pkg.left", "pkg.right"): "a reason"}
    assert layering_errors(tree, TOY_LAYERS, overrides={}, allowed=allowed) == []


def test_module_in_no_layer_fails(tmp_path: Path) -> None:
    tree = toy(tmp_path, {"stray.py": ""})
    errors = layering_errors(tree, TOY_LAYERS[:2], overrides={}, allowed={})
    assert "pkg.stray is in no layer: add its package to LAYERS." in errors


def test_override_moves_a_module_into_a_unit(tmp_path: Path) -> None:
    tree = toy(tmp_path, {"__main__.py": "from pkg.top import run\n", "top/run.py": ""})
    assert layering_errors(tree, TOY_LAYERS, overrides={}, allowed={})  # bottom imports top
    overrides = {"pkg.__main__": "pkg.top"}
    assert layering_errors(tree, TOY_LAYERS, overrides=overrides, allowed={}) == []


def test_cycle_is_reported_even_inside_one_package(tmp_path: Path) -> None:
    tree = toy(
        tmp_path,
        {
            "left/a.py": "from pkg.left import b\n",
            "left/b.py": "def f() -> None:\n    from .c import x\n",
            "left/c.py": "import pkg.left.a\n",
            "left/d.py": "from pkg.left import a\n",
        },
    )
    assert layering_errors(tree, TOY_LAYERS, overrides={}, allowed={}) == []
    assert cycles(tree) == [["pkg.left.a", "pkg.left.b", "pkg.left.c", "pkg.left.a"]]


def test_size_limits(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(58))
    nested = f"def outer() -> None:\n    def inner() -> None:\n{body}\n"  # inner: 59, outer: 60
    long = "def long() -> None:\n" + "\n".join(f"    y{i} = {i}" for i in range(60)) + "\n"
    big = "\n" * MAX_MODULE_LINES
    tree = toy(tmp_path, {"left/ok.py": nested, "left/long.py": long, "left/big.py": big})
    assert size_errors(tree) == [
        "pkg.left.big (big.py) has 450 lines: split it below 450.",
        "pkg.left.long.long (line 1) has 61 lines: split it to at most 60.",
    ]
    assert size_errors(tree, exempt_units=("pkg.left",)) == [
        "pkg.left.big (big.py) has 450 lines: split it below 450."
    ]
    inner_too_long = nested.replace(
        "def inner() -> None:\n", "def inner() -> None:\n        z = 0\n"
    )
    (tmp_path / "pkg" / "left" / "ok.py").write_text(inner_too_long)
    messages = size_errors(scan(tmp_path, "pkg"))
    assert "pkg.left.ok.outer (line 1) has 61 lines: split it to at most 60." in messages
    assert not any("inner" in m for m in messages)  # inner: 60 lines, at the limit
