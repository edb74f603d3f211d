"""The house style that ruff does not check: short files and functions that fit on a screen (in autograd/
and tinyconvnext/), kernels with few parameters, and an engine that never imports the model."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE_FILES = sorted((ROOT / "autograd").rglob("*.py"))
KERNEL_FILES = sorted((ROOT / "autograd" / "kernels").rglob("*.py"))
TINYCONVNEXT_FILES = sorted((ROOT / "tinyconvnext").rglob("*.py"))
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8


def _functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _parameter_count(node):
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return len([n for n in names if n not in ("self", "cls")])


def _check_file_is_short(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_FILE_LINES})"


def _check_functions_fit_on_a_screen(path):
    too_long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in _functions(path)
        if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"{path.relative_to(ROOT)}: {too_long}"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_file_is_short(path):
    _check_file_is_short(path)


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_functions_fit_on_a_screen(path):
    _check_functions_fit_on_a_screen(path)


@pytest.mark.parametrize("path", TINYCONVNEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_tinyconvnext_file_is_short(path):
    _check_file_is_short(path)


@pytest.mark.parametrize("path", TINYCONVNEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_tinyconvnext_functions_fit_on_a_screen(path):
    _check_functions_fit_on_a_screen(path)


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_kernels_take_few_parameters(path):
    """A kernel that needs many numbers takes them as a small named structure (the ops keep PyTorch's
    signatures, e.g. ``batch_norm``'s)."""
    too_many = [
        f"{node.name} ({_parameter_count(node)} parameters)"
        for node in _functions(path)
        if _parameter_count(node) > MAX_PARAMETERS
    ]
    assert not too_many, f"{path.relative_to(ROOT)}: {too_many}"


def test_the_engine_never_imports_the_model():
    offenders = []
    for path in ENGINE_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            offenders += [
                f"{path.relative_to(ROOT)}: {m}" for m in modules if m.split(".")[0] == "tinyconvnext"
            ]
    assert not offenders, offenders


def test_kernels_never_import_the_ops():
    """The kernel chapter stands on its own: the ops name their kernels, never the other way round."""
    offenders = []
    for path in sorted((ROOT / "autograd" / "kernels").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                if "nn" in module.split(".") or "ops" in module.split("."):
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders, offenders


def test_readme_and_results_stay_documentation_sized():
    """The README: at most 9,000 characters, lines of at most 110; docs/results.md: at most 300 lines."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    long_lines = [i for i, line in enumerate(readme.splitlines(), 1) if len(line) > 110]
    assert len(readme) <= 9000 and not long_lines, (len(readme), long_lines)
    results = (ROOT / "docs" / "results.md").read_text(encoding="utf-8").splitlines()
    assert len(results) <= 300, len(results)
