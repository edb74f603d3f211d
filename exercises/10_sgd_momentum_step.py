"""Exercise 10, after lesson 10 (modules, optimisers and the loop): one step of SGD with momentum.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_10_sgd_momentum_step.py
"""

import numpy as np


def sgd_momentum_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> np.ndarray:
    """One step of SGD with momentum, in PyTorch's form (``torch.optim.SGD``, ``autograd.optim.SGD``):

        g <- grad + weight_decay * param               (an L2 penalty, added to the gradient)
        b <- g at the first step, else momentum * b + g
        update = g + momentum * b if nesterov else b
        param <- param - lr * update

    Args:
        param, grad: arrays of one shape.
        state: this parameter's state, kept between steps: empty before the first step; store the buffer b
            as ``state["momentum_buffer"]``.
        lr, momentum, weight_decay, nesterov: as in the formula.
    Returns:
        The new parameter (a new array; ``param`` itself may be left as it was).
    Hint: at the first step b is a copy of g, not g itself (the next step updates b, and g must not change).
    """
    raise NotImplementedError("exercise 10: write sgd_momentum_step")
