"""Utilities on parameter lists: gradient clipping by global norm (``torch.nn.utils.clip_grad_norm_``)."""

from __future__ import annotations

from ..backend import get_array_module


def clip_grad_norm_(parameters, max_norm: float, eps: float = 1e-6) -> float:
    """Scale all gradients so that their joint L2 norm is at most ``max_norm``; return the norm before."""
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    xp = get_array_module(*grads)
    total = float(
        xp.sqrt(sum(xp.square(g, dtype=xp.float64).sum() for g in grads))
    )  # one transfer, at the end
    scale = max_norm / (total + eps)
    if scale < 1:
        for g in grads:
            g *= g.dtype.type(scale)
    return total
