"""PyPI's ``autograd`` (HIPS) has our engine's name. With it first on the path, or its files mixed into our
folder, importing tinyconvnext stops at once with one line naming the package found and what to do, and no
traceback (unless asked for), whether a user imports it or runs one of its commands.

The foreign packages here are real packages written by the test with HIPS autograd's layout
(``autograd/tracer.py``, ``autograd/numpy/``), put first on PYTHONPATH for a fresh interpreter run from a
folder outside the repository (so that Python finds tinyconvnext through its installation, as a user's
would, and the foreign autograd before ours)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import autograd
from tinyconvnext.cli import DEBUG_ENV, EXIT_USAGE
from tinyconvnext.engine_check import ENGINE_NAME, foreign_autograd_problem

OUR_AUTOGRAD = Path(autograd.__file__).parent


def _hips_layout(site: Path) -> Path:
    """A small package named autograd laid out as HIPS autograd is, whose import works."""
    package = site / "autograd"
    (package / "numpy").mkdir(parents=True)
    (package / "__init__.py").write_text("from .tracer import primitive\nfrom .core import make_vjp\n")
    (package / "tracer.py").write_text("def primitive(function):\n    return function\n")
    (package / "core.py").write_text("def make_vjp(function, x):\n    return function, x\n")
    (package / "numpy" / "__init__.py").write_text("from numpy import *  # noqa: F403\n")
    return package


def _mixed_install(site: Path) -> Path:
    """Our engine's files with HIPS autograd's installed into the same folder."""
    package = site / "autograd"
    shutil.copytree(OUR_AUTOGRAD, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "tracer.py").write_text("def primitive(function):\n    return function\n")
    (package / "numpy").mkdir()
    (package / "numpy" / "__init__.py").write_text("")
    return package


def _unmarked(site: Path) -> Path:
    """Some other package named autograd, without HIPS's files and without our marker."""
    package = site / "autograd"
    package.mkdir()
    (package / "__init__.py").write_text("def grad(function):\n    return function\n")
    return package


def _run(site: Path, *arguments: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != DEBUG_ENV}
    env["PYTHONPATH"] = str(site)
    if debug:
        env[DEBUG_ENV] = "1"
    return subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, env=env, cwd=site, timeout=120
    )


FOREIGN = [
    (_hips_layout, "is PyPI's autograd (HIPS), or mixed with it (it holds tracer.py, numpy)"),
    (_mixed_install, "is PyPI's autograd (HIPS), or mixed with it (it holds tracer.py, numpy)"),
    (_unmarked, "is not tinyconvnext's engine (no __engine__ = 'tinyconvnext'"),
]
ENTRIES = [
    ["-c", "import tinyconvnext"],
    ["-c", "import tinyconvnext.data"],
    ["-m", "tinyconvnext.predict", "--help"],
]


@pytest.mark.parametrize("write_package, phrase", FOREIGN, ids=["hips", "mixed", "unmarked"])
@pytest.mark.parametrize("entry", ENTRIES, ids=["import", "import-data", "predict-help"])
def test_a_foreign_autograd_is_stopped_in_one_line(tmp_path, write_package, phrase, entry):
    package = write_package(tmp_path)
    done = _run(tmp_path, *entry)
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"{ENGINE_NAME}: error: the autograd package at {package} ")
    assert phrase in line and "pip uninstall autograd" in line and "fresh virtual environment" in line


def test_debug_shows_the_traceback_and_the_error_can_be_caught(tmp_path):
    _hips_layout(tmp_path)
    assert "Traceback" in _run(tmp_path, "-m", "tinyconvnext.predict", "--help", debug=True).stderr
    # a program that imports tinyconvnext optionally catches an ImportError and goes on
    program = "try:\n    import tinyconvnext\nexcept ImportError as error:\n    print('without:', error)\n"
    done = _run(tmp_path, "-c", program)
    assert done.returncode == 0 and done.stdout.startswith("without: the autograd package at")


def test_our_engine_passes_the_check(tmp_path):
    assert foreign_autograd_problem() is None
    assert autograd.__engine__ == ENGINE_NAME
    done = _run(tmp_path, "-c", "import tinyconvnext, autograd; print(autograd.__file__)")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == OUR_AUTOGRAD


def test_our_subpackages_refuse_to_run_under_another_autograds_init(tmp_path):
    """A mixed install whose ``__init__.py`` is HIPS's: importing one of our engine's subpackages directly
    (not through tinyconvnext) stops at the subpackage with the error that says what to do."""
    package = _mixed_install(tmp_path)
    (package / "__init__.py").write_text("from .tracer import primitive\n")
    for subpackage in ("autograd.nn", "autograd.ops", "autograd.optim", "autograd.kernels"):
        done = _run(tmp_path, "-c", f"import {subpackage}")
        assert done.returncode != 0
        last_line = done.stderr.strip().splitlines()[-1]
        assert last_line.startswith("ImportError: the autograd package in ")
        assert "runs another autograd's __init__.py" in last_line and "pip uninstall autograd" in last_line
