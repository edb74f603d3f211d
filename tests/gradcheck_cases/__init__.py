"""The gradient-check case of every differentiable op, keyed by its Function class.

A case is a function ``case(draw) -> (fn, inputs)``: ``draw`` is hypothesis's, ``fn`` maps the float64
leaf tensors ``inputs`` to one tensor. Register with ``@case(SomeFunction)``; a Function of the
engine without a case fails ``test_every_op_has_a_gradcheck_case``.
"""

import importlib
import pkgutil

CASES = {}


def case(*function_classes):
    def register(builder):
        for cls in function_classes:
            CASES.setdefault(cls, []).append(builder)
        return builder

    return register


def load_all():
    """Import every case module of this package (each registers its cases)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return CASES
