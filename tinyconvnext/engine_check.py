"""Is the ``autograd`` that Python finds ours? PyPI's ``autograd`` (HIPS) has the same name.

With both on the path, ``import autograd`` gives whichever comes first, and a pip install of one over the
other leaves the two packages' files mixed in one folder. Either way our code would fail far from the
cause (``module 'autograd' has no attribute 'full'``). ``tinyconvnext/__init__.py`` runs ``check_engine()``
before anything imports the engine, so the mistake is stopped where it starts, with one line saying what
to do. A subpackage (``tinyconvnext.data``) needs no check of its own: Python runs the parent package's
``__init__`` first.

The check raises ``ForeignAutogradError`` (an ``ImportError``, so a program may catch it). When nobody
does, the program would die of it with a traceback; the error's own ``sys.excepthook`` prints the one line
``tinyconvnext: error: ...`` instead and exits with status 2 (bad environment, as bad input), for
``python -m tinyconvnext.predict``, ``python -c "import tinyconvnext"`` and the lessons alike.
``--debug`` or ``TINYCONVNEXT_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .cli import EXIT_USAGE, debug_requested

ENGINE_NAME = "tinyconvnext"  # the value of our autograd/__init__.py's __engine__
# Files of HIPS autograd that ours does not have: beside our files, they mean a mixed install.
HIPS_FILES = ("tracer.py", "numpy")
ADVICE = "pip uninstall autograd, or install tinyconvnext into a fresh virtual environment"

_checked = False


class ForeignAutogradError(ImportError):
    """``import autograd`` finds another package of that name, or one mixed with another's files."""


def foreign_autograd_problem() -> str | None:
    """None when ``import autograd`` gives tinyconvnext's engine; otherwise one line naming the package
    found (its folder) and what to do. Looks at the folder before running any of its code."""
    spec = importlib.util.find_spec("autograd")
    if spec is None or spec.origin is None:
        return None  # nothing to confuse ours with: the import that follows names what is missing
    folder = Path(spec.origin).parent
    hips_files = [name for name in HIPS_FILES if (folder / name).exists()]
    if hips_files:
        return (
            f"the autograd package at {folder} is PyPI's autograd (HIPS), or mixed with it "
            f"(it holds {', '.join(hips_files)}), not tinyconvnext's engine: {ADVICE}"
        )
    if getattr(importlib.import_module("autograd"), "__engine__", None) != ENGINE_NAME:
        return (
            f"the autograd package at {folder} is not tinyconvnext's engine "
            f"(no __engine__ = {ENGINE_NAME!r} in its __init__.py): {ADVICE}"
        )
    return None


def check_engine() -> None:
    """Raise ``ForeignAutogradError`` (one line) unless ``import autograd`` gives our engine."""
    global _checked
    if _checked:
        return
    problem = foreign_autograd_problem()
    if problem is None:
        _checked = True
        return
    _show_in_one_line_if_uncaught()
    raise ForeignAutogradError(problem)


def _show_in_one_line_if_uncaught() -> None:
    """Make an uncaught ``ForeignAutogradError`` end the program with its one line and exit status 2."""
    previous_hook = sys.excepthook

    def hook(kind, error, traceback):
        if not isinstance(error, ForeignAutogradError) or debug_requested():
            return previous_hook(kind, error, traceback)
        print(f"{ENGINE_NAME}: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)  # Python exits with this status when an excepthook raises it

    sys.excepthook = hook
