"""The differentiable ops of the engine, one file per family (forward and backward side by side).

They build on ``Tensor``; Tensor's methods and operators (``x + y``, ``x.sum()``) call them through
``autograd.tensor.OPS``, which is filled here, so that neither module imports the other.
"""

from .. import (
    _identity,  # noqa: F401  (first: stops if another autograd's __init__ ran)
    tensor,
)
from . import elementwise, matmul, reduction, shape, softmax

tensor.OPS.elementwise, tensor.OPS.matmul, tensor.OPS.reduction = elementwise, matmul, reduction
tensor.OPS.shape, tensor.OPS.softmax = shape, softmax
