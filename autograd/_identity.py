"""Is the ``autograd`` package this file sits in still ours? PyPI's ``autograd`` (HIPS) has the same name.

A pip install of HIPS autograd over ours (or ours over it) mixes the two packages' files in one folder, and
``autograd/__init__.py`` is then whichever came last. With HIPS's, ``import autograd`` runs its code, and our
subpackages, imported after it, would mix with it silently and fail far from the cause. So each of our
subpackages imports this module first (``from .. import _identity``), and importing it checks that the
parent package is our engine (the ``__engine__`` marker of our ``__init__.py``). From the model's side,
``tinyconvnext/engine_check.py`` checks the same before anything imports the engine.
"""

import sys

ENGINE_NAME = "tinyconvnext"


def require_our_engine() -> None:
    """Raise ``ImportError`` naming the folder and what to do, unless package ``autograd`` is our engine."""
    parent = sys.modules.get("autograd")
    if getattr(parent, "__engine__", None) == ENGINE_NAME:
        return
    folder = getattr(parent, "__path__", ["?"])[0]
    raise ImportError(
        f"the autograd package in {folder} runs another autograd's __init__.py, not tinyconvnext's engine "
        "(PyPI's autograd, HIPS, installed over ours?): pip uninstall autograd, then reinstall tinyconvnext, "
        "or use a fresh virtual environment"
    )


require_our_engine()
