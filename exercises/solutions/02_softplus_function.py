"""Exercise 02, after lesson 03 (the tensor and the graph): a new differentiable op, as a ``Function``.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_02_softplus_function.py
"""

from autograd import Function, Tensor, get_array_module


class Softplus(Function):
    """softplus(x) = log(1 + exp(x)), a smooth ReLU; d softplus / dx = sigmoid(x) = 1 / (1 + exp(-x)).

    ``forward`` gets the input's array (NumPy or CuPy: write ``xp = get_array_module(x)``) and returns an
    array of the same shape and dtype; it may keep what ``backward`` needs with ``self.save_for_backward``.
    ``backward`` gets dL/dy (the output's shape) and returns dL/dx = dL/dy * sigmoid(x).
    Both must stay finite for any finite x: exp(x) overflows for x > 709 in float64 (and x > 88 in float32).
    Hint: softplus(x) = max(x, 0) + log1p(exp(-|x|)) never overflows, and with y = softplus(x),
    sigmoid(x) = 1 - exp(-y) = -expm1(-y).
    """

    def forward(self, x):
        xp = get_array_module(x)
        y = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        self.save_for_backward(y)
        return y

    def backward(self, grad):
        xp = get_array_module(grad)
        (y,) = self.saved
        return grad * -xp.expm1(-y)


def softplus(x: Tensor) -> Tensor:
    """softplus of a Tensor, recorded for backward (the op's public face, as ``autograd.tanh``)."""
    return Softplus.apply(x)
