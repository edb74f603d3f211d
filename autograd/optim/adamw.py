"""AdamW (Loshchilov & Hutter, 2019) with PyTorch's semantics.

For each parameter p with gradient g, at step t:
    p <- p - lr * weight_decay * p                      (decoupled weight decay: lr * wd, as PyTorch)
    m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
``adamw_update`` below is that formula, written with array operations (NumPy or CuPy): it is what the
step computes. Its fast paths, like the ops', are switched off by ``autograd.kernels`` (``AUTOGRAD_KERNELS=
reference``): then ``adamw_update`` runs for every parameter. Otherwise
* on the CPU the whole update of a parameter is one fused Numba pass (``autograd/kernels/cpu/adamw.py``), and
  when the parameters lie side by side in one flat buffer (``optim/flat.py``; as ``DataParallel`` keeps them),
  one multi-threaded call updates all of them, with the same arithmetic per element;
* on the GPU it is one CUDA kernel per parameter (``autograd/kernels/cuda/adamw.py``).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..backend import get_array_module
from .flat import FlatLayout
from .optimizer import Optimizer


def adamw_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step in place on arrays p, m, v (NumPy or CuPy)."""
    xp = get_array_module(p)
    p *= 1 - lr * weight_decay
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    denom = xp.sqrt(v) / math.sqrt(1 - beta2**step) + eps
    p -= (lr / (1 - beta1**step)) * m / denom


@dataclass
class _FlatState:
    """The flat step's bookkeeping: the layout found, the moments as two flat buffers (each parameter's
    state holds views of them, so state dicts are unchanged), each segment's group, the threads' tasks."""

    layout: FlatLayout
    exp_avg: np.ndarray
    exp_avg_sq: np.ndarray
    views: list  # (exp_avg view, exp_avg_sq view) per parameter, in buffer order
    segment_group: np.ndarray
    tasks: tuple


class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(
                f"AdamW: invalid hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                f"weight_decay={weight_decay}"
            )
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self._flat: _FlatState | None = None

    def step(self) -> None:
        if self._step_flat():
            return
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(id(p))
                if state is None:
                    xp = get_array_module(p.data)
                    state = self.state[id(p)] = {
                        "step": 0,
                        "exp_avg": xp.zeros_like(p.data),
                        "exp_avg_sq": xp.zeros_like(p.data),
                    }
                state["step"] += 1
                arrays = (p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"])
                numbers = (group["lr"], beta1, beta2, group["eps"], group["weight_decay"], state["step"])
                device = kernels.device_for_kernels(p.data, p.grad.data)
                if device is not None and p.data.flags.c_contiguous:  # the fast path: one fused kernel
                    fused = importlib.import_module(f"autograd.kernels.{device}.adamw")
                    fused.adamw_update(*arrays, fused.adamw_hyper(*numbers))
                else:
                    adamw_update(*arrays, *numbers)

    # -- all parameters in one call, when they lie flat ----------------------------------------------
    def _step_flat(self) -> bool:
        """Update every parameter with one call of the Numba segments kernel when the parameters and their
        gradients lie flat (``FlatLayout``); return False, having done nothing, when they do not."""
        first = self.param_groups[0]["params"][0]
        if kernels.device_for_kernels(first.data) != "cpu":
            return False
        flat = self._flat
        if flat is None or not flat.layout.still_holds() or not self._flat_state_holds(flat):
            flat = self._flat = self._build_flat()
            if flat is None:
                return False
        from ..kernels.cpu.adamw import adamw_hyper, adamw_update_segments

        step = self.state[id(flat.layout.params[0])]["step"] + 1
        for p in flat.layout.params:
            self.state[id(p)]["step"] = step
        per_group = [
            adamw_hyper(g["lr"], *g["betas"], g["eps"], g["weight_decay"], step) for g in self.param_groups
        ]
        hyper = np.ascontiguousarray(
            np.array(per_group, dtype=np.float64)[flat.segment_group].T
        )  # (6, segments)
        adamw_update_segments(
            flat.layout.data, flat.layout.grad, flat.exp_avg, flat.exp_avg_sq, flat.tasks, hyper
        )
        return True

    def _flat_state_holds(self, flat: _FlatState) -> bool:
        """The parameters' states are still the flat buffers' views, all at the same step."""
        step = self.state.get(id(flat.layout.params[0]), {}).get("step")
        for p, (m, v) in zip(flat.layout.params, flat.views, strict=False):
            state = self.state.get(id(p))
            if (
                state is None
                or state["exp_avg"] is not m
                or state["exp_avg_sq"] is not v
                or state["step"] != step
            ):
                return False
        return True

    def _build_flat(self) -> _FlatState | None:
        """Find the layout and move the moments into two flat buffers (copying any existing state); None if
        the parameters do not lie flat or their states are at different steps."""
        layout = FlatLayout.find(self.parameters())
        if layout is None:
            return None
        states = [self.state.get(id(p)) for p in layout.params]
        steps = {0 if state is None else state["step"] for state in states}
        if len(steps) != 1:
            return None
        step = steps.pop()
        exp_avg, exp_avg_sq = np.zeros_like(layout.data), np.zeros_like(layout.data)
        views = []
        for p, state, a, b in zip(layout.params, states, layout.bounds[:-1], layout.bounds[1:], strict=False):
            m, v = exp_avg[a:b].reshape(p.shape), exp_avg_sq[a:b].reshape(p.shape)
            if state is not None:
                m[...], v[...] = state["exp_avg"], state["exp_avg_sq"]
            self.state[id(p)] = {"step": step, "exp_avg": m, "exp_avg_sq": v}
            views.append((m, v))
        group_of = {id(p): index for index, group in enumerate(self.param_groups) for p in group["params"]}
        from ..kernels.cpu.adamw import segment_tasks

        return _FlatState(
            layout,
            exp_avg,
            exp_avg_sq,
            views,
            np.array([group_of[id(p)] for p in layout.params], dtype=np.int64),
            segment_tasks(layout.bounds),
        )
