"""Exercise 11, after lesson 10 (modules, optimisers and the loop): one step of AdamW.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_11_adamw_step.py
"""

import numpy as np


def adamw_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
) -> np.ndarray:
    """One step of AdamW (Loshchilov & Hutter, 2019) as PyTorch and ``autograd.optim.AdamW`` compute it.
    At step t (1 at the first step):

        param <- param * (1 - lr * weight_decay)          (decoupled weight decay; weight_decay 0 gives Adam)
        m <- beta1 m + (1 - beta1) grad                    (m, v start at zeros)
        v <- beta2 v + (1 - beta2) grad^2
        param <- param - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    The divisions by 1 - beta^t undo the pull of the zero start towards zero in the first steps.

    Args:
        param, grad: arrays of one shape.
        state: this parameter's state, kept between steps: empty before the first step; store t as
            ``state["step"]``, m as ``state["exp_avg"]`` and v as ``state["exp_avg_sq"]``.
        lr, betas (beta1, beta2), eps, weight_decay: as in the formula.
    Returns:
        The new parameter.
    """
    beta1, beta2 = betas
    if not state:
        state.update(step=0, exp_avg=np.zeros_like(param), exp_avg_sq=np.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * grad
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad**2
    m_hat = state["exp_avg"] / (1 - beta1**t)
    v_hat = state["exp_avg_sq"] / (1 - beta2**t)
    return param * (1 - lr * weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps)
