"""GELU activation: the Numba CPU kernels, as a story of four steps.

Math (elementwise, any shape):

    exact ("none"):  y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
                     dy/dx = Phi(x) + x * phi(x),        phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    tanh:            y = 0.5 * x * (1 + tanh(u)),        u = sqrt(2 / pi) * (x + 0.044715 * x^3)
                     dy/dx = 0.5 * (1 + tanh(u)) + 0.5 * x * (1 - tanh(u)^2) * du/dx,
                     du/dx = sqrt(2 / pi) * (1 + 3 * 0.044715 * x^2)          (PyTorch's definition)

Every step computes dy/dx beside y in the forward pass (``gelu_forward_with_slope``): the autograd op keeps
the slope instead of x, and its backward pass is one multiply (``gelu_backward_from_slope``).

The steps (``STEPS``, in order; each file's docstring says what it changes):
1. step1_plain_loop: the formulas in one serial loop, float64, libm's erf, exp and tanh.
2. step2_stable_tails: Phi by erfc and the tanh form through one exp(-|2u|): accurate in both tails.
3. step3_threads: the same loop split across threads with prange.
4. step4_float32_polynomials (+ step4_bias): float32 computed in float32, with exp and Phi as short
   polynomials so that LLVM vectorises the loop (libm's exp and erfc keep it scalar); the bias of a
   preceding Linear layer fused in. This is what the public functions below run.
Steps 1 to 3 implement gelu_forward_with_slope and gelu_backward_from_slope; step 4 implements all seven
entry points: gelu_forward, gelu_forward_with_slope, gelu_backward, gelu_backward_from_slope,
bias_gelu_forward, bias_gelu_forward_with_slope and gelu_backward_from_slope_with_bias_grad.

The plain math, which the tests compare every step with, is the ops' own body: ``GELU`` in
autograd/nn/functional/activation.py and ``LinearGELU`` in autograd/nn/functional/fully_connected.py.
The float32 exp is in autograd/kernels/cpu/fast_math.py.
"""

from types import SimpleNamespace

from autograd.kernels.cpu.gelu import step1_plain_loop, step2_stable_tails, step3_threads
from autograd.kernels.cpu.gelu._common import APPROXIMATIONS
from autograd.kernels.cpu.gelu.step4_bias import (
    bias_gelu_forward,
    bias_gelu_forward_with_slope,
    gelu_backward_from_slope_with_bias_grad,
)
from autograd.kernels.cpu.gelu.step4_float32_polynomials import (
    gelu_backward,
    gelu_backward_from_slope,
    gelu_forward,
    gelu_forward_with_slope,
)


def _step(module):
    """The two entry points that steps 1 to 3 implement."""
    return SimpleNamespace(
        gelu_forward_with_slope=module.gelu_forward_with_slope,
        gelu_backward_from_slope=module.gelu_backward_from_slope,
    )


STEPS = {
    "1 plain loop": _step(step1_plain_loop),
    "2 stable tails": _step(step2_stable_tails),
    "3 threads": _step(step3_threads),
    "4 float32 polynomials": SimpleNamespace(
        gelu_forward=gelu_forward,
        gelu_forward_with_slope=gelu_forward_with_slope,
        gelu_backward=gelu_backward,
        gelu_backward_from_slope=gelu_backward_from_slope,
        bias_gelu_forward=bias_gelu_forward,
        bias_gelu_forward_with_slope=bias_gelu_forward_with_slope,
        gelu_backward_from_slope_with_bias_grad=gelu_backward_from_slope_with_bias_grad,
    ),
}
