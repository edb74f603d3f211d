"""Which exercise files the tests in this folder check.

By default the reference solutions in ``exercises/solutions/``: CI runs them, which proves that the tests pass
on correct work. A learner points the same tests at their own files in ``exercises/``:

    TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_06_col2im_stride2.py

``TINYCONVNEXT_EXERCISES`` may also name a folder that holds files with the same names. It is an environment
variable, not a pytest option, because pytest-xdist's workers inherit it as it is.
"""

import importlib.util
import os
from pathlib import Path

import pytest

EXERCISES_DIR = Path(__file__).resolve().parents[2] / "exercises"
SOLUTIONS_DIR = EXERCISES_DIR / "solutions"


def chosen_folder() -> Path:
    """The folder whose files are tested: the solutions, the learner's stubs ("mine"), or a named folder."""
    choice = os.environ.get("TINYCONVNEXT_EXERCISES", "solutions")
    if choice == "solutions":
        return SOLUTIONS_DIR
    if choice == "mine":
        return EXERCISES_DIR
    folder = Path(choice).expanduser().resolve()
    if not folder.is_dir():
        raise pytest.UsageError(
            f"TINYCONVNEXT_EXERCISES={choice!r}: expected 'solutions', 'mine' or an existing folder"
        )
    return folder


def load_exercise_file(path: Path):
    """Import one exercise file by its path (a name such as 06_col2im_stride2 cannot be imported by name)."""
    if not path.is_file():
        raise FileNotFoundError(f"no exercise file {path}")
    name = f"exercise_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def exercise():
    """``exercise("06_col2im_stride2")``: that exercise's module, from the chosen folder, imported once."""
    folder, loaded = chosen_folder(), {}

    def load(stem: str):
        if stem not in loaded:
            loaded[stem] = load_exercise_file(folder / f"{stem}.py")
        return loaded[stem]

    return load


@pytest.fixture(scope="session")
def exercise_file():
    """``exercise_file(path)``: import any exercise file by its path (the stub test loads the stubs)."""
    return load_exercise_file
