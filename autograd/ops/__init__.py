"""The differentiable ops of the engine, one file per family (forward and backward side by side)."""

from . import elementwise, matmul, reduction, shape, softmax  # noqa: F401
