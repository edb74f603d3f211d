"""Gradient checking: compare backward's gradients with central finite differences in float64.

For an op f and inputs x, the analytic gradients come from backward; the numeric ones from
    df/dx_i  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),
whose error is O(eps^2) plus rounding of order (machine epsilon / eps): with float64 and eps = 1e-6 both
are tiny, with float32 the rounding term alone is ~1e-1. That is why checks run in float64.

* Small problems: the full Jacobian, one backward per output element and one pair of forwards per
  input element, compared entry by entry.
* Large problems: Chainer's ``check_backward`` idea. Pick a random output weighting w and a random
  input direction d; the directional derivative of <w, f(x)> along d costs two forwards numerically and
  equals sum_j <grad_j, d_j> analytically. One number, compared; it catches any wrong gradient except
  with probability zero.

Devices: the inputs may live on "cuda". Finite differences perturb each input on its own device, the
output weighting is moved to the output's device, and every comparison happens in NumPy on the CPU.
"""

from __future__ import annotations

import numpy as np

from .backend import to_device, to_numpy
from .function import set_grad_enabled
from .tensor import Tensor


class GradcheckError(AssertionError):
    """A gradient that does not match its finite-difference estimate."""


def _forward(fn, inputs):
    """fn(*inputs) without recording a graph, as a float64 NumPy array."""
    with set_grad_enabled(False):
        out = fn(*inputs)
    return to_numpy(out.data).astype(np.float64)


def _analytic_vjp(fn, inputs, weight):
    """Gradients of <weight, fn(inputs)> with respect to every input (None where no path exists)."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    if not out.requires_grad:
        return [np.zeros(t.shape) for t in inputs]
    out.backward(Tensor(to_device(weight.astype(out.dtype), out.device)))
    return [np.zeros(t.shape) if t.grad is None else to_numpy(t.grad.data).astype(np.float64) for t in inputs]


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    full_jacobian_max: int = 4096,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn(*inputs)``'s backward against finite differences.

    Args:
        fn: takes the tensors in ``inputs`` and returns one Tensor.
        inputs: float64 tensors; those with ``requires_grad=True`` are checked.
        eps: finite-difference step.
        atol, rtol: an entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
        full_jacobian_max: the full Jacobian is checked when (input elements x output elements) is at
            most this; above it, the random projection.
        seed: seeds the random output weighting and input direction.
    Returns:
        True; on failure raises ``GradcheckError`` naming the worst entry (or returns False when
        ``raise_exception=False``).
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need float64"
            )
    rng = np.random.default_rng(seed)
    out0 = _forward(fn, inputs)
    n_in = sum(inputs[i].size for i in checked)
    if n_in * max(out0.size, 1) <= full_jacobian_max:
        ok, message = _check_full(fn, inputs, checked, out0, eps, atol, rtol)
    else:
        ok, message = _check_projection(fn, inputs, checked, out0, eps, atol, rtol, rng)
    if not ok and raise_exception:
        raise GradcheckError(message)
    return ok


def _perturbed(fn, inputs, i, flat_index, delta):
    """fn at input i's element flat_index moved by +delta and by -delta, written in place on the input's
    device (NumPy or CuPy), then restored."""
    data = inputs[i].data
    flat = data.reshape(-1)
    original = flat[flat_index].copy()
    flat[flat_index] = original + delta
    plus = _forward(fn, inputs)
    flat[flat_index] = original - delta
    minus = _forward(fn, inputs)
    flat[flat_index] = original
    return plus, minus


def _check_full(fn, inputs, checked, out0, eps, atol, rtol):
    out_size = max(out0.size, 1)
    # analytic[i] has shape (out_size, input_size): one backward per output element.
    analytic = {i: np.zeros((out_size, inputs[i].size)) for i in checked}
    for k in range(out_size):
        weight = np.zeros(out_size)
        weight[k] = 1.0
        grads = _analytic_vjp(fn, inputs, weight.reshape(out0.shape))
        for i in checked:
            analytic[i][k] = grads[i].reshape(-1)
    worst = None
    for i in checked:
        inputs[i].data = inputs[i].data.copy()  # contiguous, so a flat view writes through
        for j in range(inputs[i].size):
            plus, minus = _perturbed(fn, inputs, i, j, eps)
            numeric = ((plus - minus) / (2 * eps)).reshape(-1)
            for k in range(out_size):
                a, n = analytic[i][k, j], numeric[k]
                excess = abs(a - n) - (atol + rtol * abs(n))
                if worst is None or excess > worst[0]:
                    worst = (excess, i, j, k, a, n)
    excess, i, j, k, a, n = worst
    if excess <= 0:
        return True, ""
    index = [int(v) for v in np.unravel_index(j, inputs[i].shape)] if inputs[i].ndim else []
    out_index = [int(v) for v in np.unravel_index(k, out0.shape)] if out0.ndim else []
    return False, (
        f"gradcheck failed (full Jacobian): d output{out_index} / d input {i}{index}: "
        f"analytic {a:.10g}, numeric {n:.10g}, abs error {abs(a - n):.3g}, "
        f"relative error {abs(a - n) / max(abs(n), 1e-300):.3g} (atol {atol}, rtol {rtol})"
    )


def _check_projection(fn, inputs, checked, out0, eps, atol, rtol, rng):
    weight = rng.standard_normal(out0.shape)
    grads = _analytic_vjp(fn, inputs, weight)
    directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}
    originals = {i: inputs[i].data.copy() for i in checked}
    # The steps live on each input's device; the directions stay in NumPy for the analytic side.
    steps = {i: eps * to_device(directions[i].astype(inputs[i].dtype), inputs[i].device) for i in checked}

    def numeric_derivative(moved):
        """(<w, f(x + eps d)> - <w, f(x - eps d)>) / 2 eps, moving only the inputs in ``moved``."""
        values = []
        for sign in (1, -1):
            for i in moved:
                inputs[i].data = originals[i] + sign * steps[i]
            values.append(float((_forward(fn, inputs) * weight).sum()))
        for i in moved:
            inputs[i].data = originals[i]
        return (values[0] - values[1]) / (2 * eps)

    def analytic_derivative(moved):
        return sum(float((grads[i] * directions[i]).sum()) for i in moved)

    analytic, numeric = analytic_derivative(checked), numeric_derivative(checked)
    # Finite differences of a float64 sum are good to about 1e-10 of the size of its terms, so the
    # tolerance also grows (slightly) with the sum of the terms' magnitudes: cancellation cannot fail a check,
    # and a single wrong element among thousands still shows.
    scale = sum(float(np.abs(grads[i] * directions[i]).sum()) for i in checked)
    if abs(analytic - numeric) <= atol + rtol * abs(numeric) + 1e-8 * scale:
        return True, ""
    # Locate the worst input: repeat the directional check for each input alone.
    per_input = []
    for i in checked:
        a, n = analytic_derivative([i]), numeric_derivative([i])
        per_input.append((abs(a - n), i, a, n))
    err, i, a, n = max(per_input)
    return False, (
        f"gradcheck failed (random projection): input {i} of shape {inputs[i].shape}: "
        f"directional derivative analytic {a:.10g}, numeric {n:.10g}, abs error {err:.3g}, "
        f"relative error {err / max(abs(n), 1e-300):.3g} (atol {atol}, rtol {rtol})"
    )
