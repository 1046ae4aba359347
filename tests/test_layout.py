"""The package's shape: imports go one way (cli → service → engine → config → api, model), the
import graph has no cycle, and every subpackage's public names import.

Read from the source with ``ast``, so that a lazy import inside a function counts too; imports
under ``if TYPE_CHECKING:`` do not run and are left out.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import syncd

ROOT = Path(syncd.__file__).parent

#: Modules that import nothing of syncd, so that any layer may use them.
LEAVES = {
    "syncd.engine.model",
    "syncd.engine.filters",
    "syncd.engine.files",
    "syncd.engine.names",
}

#: Which layers each layer may import from (its own included).
ALLOWED: dict[str, set[str]] = {
    "cli": {"cli", "service", "engine", "config", "api", "emulator", "leaf", "root"},
    "service": {"service", "engine", "config", "api", "leaf", "root"},
    "engine": {"engine", "config", "api", "leaf", "root"},
    "config": {"config", "api", "leaf", "root"},
    "api": {"api", "root"},
    "emulator": {"emulator", "root"},
    "leaf": set(),
    "root": set(),
}

SUBPACKAGES = ["syncd.engine", "syncd.service", "syncd.api", "syncd.emulator"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(module: str) -> str:
    if module in LEAVES:
        return "leaf"
    if module == "syncd" or module == "syncd.__main__":
        return "root" if module == "syncd" else "cli"
    return module.split(".")[1]


def _runtime_nodes(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node, except what sits under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str) -> set[str]:
    """The syncd modules ``module`` imports when it runs."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "syncd"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "syncd":
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_import_goes_down_the_layers() -> None:
    upward = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if layer(target) not in ALLOWED[layer(module)]
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if module in done:
            return
        path.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_public_names_of_each_subpackage_import(package: str) -> None:
    mod = importlib.import_module(package)
    names = list(mod.__all__)
    assert names, f"{package} lists no public names"
    for name in names:
        assert getattr(mod, name) is not None, name


@pytest.mark.parametrize("package", ["syncd.engine", "syncd.service"])
def test_a_subpackage_exports_exactly_what_its_modules_list(package: str) -> None:
    """The package's ``__all__`` is its modules' ``__all__`` put together, each name taken
    from the module that defines it."""
    mod = importlib.import_module(package)
    expected: dict[str, object] = {}
    for name in sorted(m for m in MODULES if m.startswith(f"{package}.")):
        sub = importlib.import_module(name)
        expected |= {n: getattr(sub, n) for n in sub.__all__}
    assert sorted(mod.__all__) == sorted(expected)
    for name, value in expected.items():
        assert getattr(mod, name) is value, name
