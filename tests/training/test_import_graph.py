"""The two packages import without cycles: every module of ``autograd/`` and ``tinyconvnext/`` imports, and
the graph of their imports of each other (at module level and inside functions alike) has no cycle."""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autograd", "tinyconvnext")


def _modules(package: str) -> dict:
    """{dotted module name: path} of a package's Python files (test files inside it excluded)."""
    modules = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, node, known: set) -> list[str]:
    """The known modules an import statement names: ``from .x import y`` names ``pkg.x.y`` when y is a
    module, else ``pkg.x``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level:
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    names = []
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            names.append(f"{base}.{alias.name}")
        elif base in known:
            names.append(base)
    return names


def import_graph(packages) -> dict:
    """{module: set of the modules it imports} over the given packages."""
    modules = {name: path for package in packages for name, path in _modules(package).items()}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_imported(name, path, node, set(modules)))
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict) -> list[str]:
    """One cycle of the graph as [a, b, ..., a], or [] when there is none (depth-first search)."""
    state, stack = {}, []  # state: 1 on the current path, 2 done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package):
    for name in _modules(package):
        importlib.import_module(name)


def test_tinyconvnext_has_no_import_cycle():
    graph = import_graph(["tinyconvnext"])
    assert find_cycle(graph) == []


def test_autograd_has_no_import_cycle():
    assert find_cycle(import_graph(["autograd"])) == []


def test_the_two_packages_together_have_no_import_cycle():
    assert find_cycle(import_graph(["autograd", "tinyconvnext"])) == []
