"""The gradient-check case of every differentiable op, keyed by its Function class.

A case is a function ``case(draw, device) -> (fn, inputs)``: ``draw`` is hypothesis's, ``fn`` maps the
float64 leaf tensors ``inputs`` to one tensor. Inputs are made on ``device`` ("cpu" or "cuda") with
``leaf``, and so is every array ``fn`` computes with (``constant``): an op refuses inputs on two devices.
Register with ``@case(SomeFunction)``; a Function of the engine without a case fails
``test_every_op_has_a_gradcheck_case``.
"""

import importlib
import pkgutil

import numpy as np

import autograd
from autograd.backend import to_device

CASES = {}


def case(*function_classes):
    def register(builder):
        for cls in function_classes:
            CASES.setdefault(cls, []).append(builder)
        return builder

    return register


def leaf(array, device):
    """A float64 leaf tensor on ``device`` that requires grad."""
    return autograd.tensor(np.asarray(array, np.float64), dtype=np.float64, device=device, requires_grad=True)


def constant(array, device):
    """A NumPy array that a case's ``fn`` computes with, moved to ``device``."""
    return to_device(np.asarray(array), device)


def load_all():
    """Import every case module of this package (each registers its cases)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return CASES
