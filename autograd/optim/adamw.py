"""AdamW (Loshchilov & Hutter, 2019) with PyTorch's semantics.

For each parameter p with gradient g, at step t:
    p <- p - lr * weight_decay * p                      (decoupled weight decay: lr * wd, as PyTorch)
    m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
The whole update of a parameter is one fused pass: Numba on the CPU (``autograd.kernels.cpu.adamw``), CUDA
on the GPU (``autograd.kernels.cuda.adamw``); the reference below is the same formula written with array
operations (NumPy or CuPy).
"""

from __future__ import annotations

import math

from ..backend import get_array_module
from ..kernels import dispatch
from .optimizer import Optimizer


def adamw_update_reference(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step in place on arrays p, m, v (NumPy or CuPy)."""
    xp = get_array_module(p)
    p *= 1 - lr * weight_decay
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    p -= (lr / (1 - beta1 ** step)) * m / denom


class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"AdamW: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(id(p))
                if state is None:
                    xp = get_array_module(p.data)
                    state = self.state[id(p)] = {"step": 0, "exp_avg": xp.zeros_like(p.data),
                                                 "exp_avg_sq": xp.zeros_like(p.data)}
                state["step"] += 1
                args = (p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"], group["lr"], beta1, beta2,
                        group["eps"], group["weight_decay"], state["step"])
                if dispatch.use_cuda_kernel(p.data, p.grad.data) and p.data.flags.c_contiguous:
                    from ..kernels.cuda.adamw import adamw_update

                    adamw_update(*args)
                elif dispatch.use_fast_cpu_kernel(p.data, p.grad.data) and p.data.flags.c_contiguous:
                    from ..kernels.cpu.adamw import adamw_update

                    adamw_update(*args)
                else:
                    adamw_update_reference(*args)
