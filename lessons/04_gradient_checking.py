"""Lesson 04: gradient checking.

Every op of the engine has a hand-written backward, and a hand-written backward can be wrong while
the network still trains, only worse. The cure is to compare backward against the definition of a
derivative, evaluated numerically:

    df/dx  ~  (f(x + eps) - f(x - eps)) / (2 eps)          (central difference)

This lesson measures how good that estimate is (and why the check must run in float64), checks a
whole Jacobian, then the cheap random-direction check that `autograd.gradcheck` uses for large
inputs, and finally plants bugs in hand-written Functions and watches the checks catch them.

    python lessons/04_gradient_checking.py --quick
    python lessons/04_gradient_checking.py

Figure (in --out, default lessons/output/04/):
    eps_sweep.png   finite-difference error against the step eps, float32 and float64: the V
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import autograd as ag  # noqa: E402
from autograd import Function, GradcheckError, gradcheck  # noqa: E402

parser = argparse.ArgumentParser(description="Lesson 04: gradient checking")
parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (what CI runs)")
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "04",
    help="folder for the figure",
)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


# --------------------------------------------------------------------------------------------------
section("1. How accurate is a finite difference? It depends on eps, and on the dtype")
# --------------------------------------------------------------------------------------------------
# Two errors pull in opposite directions.
# * Truncation: Taylor's theorem gives  (f(x+e) - f(x-e)) / 2e = f'(x) + e^2 f'''(x) / 6 + ...,
#   so the error shrinks like e^2 (the one-sided (f(x+e) - f(x)) / e only like e).
# * Rounding: f is computed with a relative error of about u (u = 6e-8 in float32, 1.1e-16 in
#   float64). Subtracting two nearly equal values keeps that absolute error, and dividing by 2e
#   blows it up: about u |f| / e.
# Their sum is smallest near e ~ u^(1/3): about 4e-3 in float32 and 5e-6 in float64. On a log-log
# plot the total error is a V.
#
# f(x) = tanh(x) at x = 0.5; the exact derivative 1 - tanh(x)^2 comes from backward in float64.

x0 = 0.5
probe = ag.tensor(np.array([x0]), requires_grad=True)
probe.tanh().sum().backward()
exact = probe.grad.item()
t = np.tanh(x0)
third_derivative = -2 * (1 - t * t) * (1 - 3 * t * t)
print(f"f'(0.5) from backward (float64): {exact:.15f}   (1 - tanh(0.5)^2 = {1 - t * t:.15f})")

epsilons = np.logspace(-13, 0, 40 if args.quick else 120)


def finite_difference(dtype, eps, central):
    """(f(x+eps) - f(x-eps)) / 2eps, or (f(x+eps) - f(x)) / eps, with f evaluated in `dtype`."""
    x = ag.tensor(np.array([x0]), dtype=dtype)
    with ag.no_grad():
        plus = (x + eps).tanh().item()
        minus = (x - eps).tanh().item() if central else x.tanh().item()
    return (plus - minus) / (2 * eps if central else eps)


errors = {}
for dtype in (np.float32, np.float64):
    for central in (True, False):
        estimates = np.array([finite_difference(dtype, eps, central) for eps in epsilons])
        errors[(np.dtype(dtype).name, central)] = np.abs(estimates - exact)
print(f"{'dtype':8s} {'difference':10s} {'best eps':>10s} {'smallest error':>15s} {'error at eps=1e-6':>18s}")
for (name, central), err in errors.items():
    best = int(np.argmin(err))
    at_1e6 = err[int(np.argmin(np.abs(np.log10(epsilons) + 6)))]
    print(
        f"{name:8s} {'central' if central else 'one-sided':10s} {epsilons[best]:10.1e} {err[best]:15.1e} "
        f"{at_1e6:18.1e}"
    )
best32, best64 = errors[("float32", True)].min(), errors[("float64", True)].min()
print(f"the best float32 estimate is {best32 / best64:,.0f} times worse than the best float64 one, and only")
print("near one lucky eps; at eps = 1e-6, a sensible float64 step, float32 is wrong in the second digit.")
print("A check that must tell a right backward from a slightly wrong one therefore runs in float64:")
print("autograd.gradcheck refuses anything else.")
try:
    gradcheck(lambda a: a.tanh(), [ag.randn(3, requires_grad=True)])
except TypeError as error:
    print(f"    gradcheck on float32: TypeError: {error}")

# --------------------------------------------------------------------------------------------------
section("2. The full Jacobian, by hand and with autograd.gradcheck")
# --------------------------------------------------------------------------------------------------
# For f from R^n to R^m, backward gives vector-Jacobian products: one backward with the output
# weighting e_k (one-hot) returns row k of the Jacobian. Finite differences give columns: moving
# input j by +-eps changes every output, column j. Build both and compare.

n = 5
x = ag.tensor(np.random.default_rng(0).standard_normal(n), requires_grad=True)


def softmax_of(t):
    return t.softmax(axis=0)


analytic = np.zeros((n, n))
for k in range(n):  # one backward per output element
    x.zero_grad()
    weight = np.zeros(n)
    weight[k] = 1.0
    softmax_of(x).backward(ag.tensor(weight))
    analytic[k] = x.grad.numpy()
numeric = np.zeros((n, n))
eps = 1e-6
for j in range(n):  # two forwards per input element
    step = np.zeros(n)
    step[j] = eps
    with ag.no_grad():
        plus = softmax_of(ag.tensor(x.numpy() + step)).numpy()
        minus = softmax_of(ag.tensor(x.numpy() - step)).numpy()
    numeric[:, j] = (plus - minus) / (2 * eps)
print(f"softmax Jacobian (5 x 5) from backward:\n{analytic.round(4)}")
print(f"largest |backward - finite difference| over all 25 entries: {np.abs(analytic - numeric).max():.1e}")
# Exactly this, with a tolerance and a message that names the worst entry, is autograd.gradcheck:
print(f"autograd.gradcheck(softmax, [x]) -> {gradcheck(softmax_of, [x])}")
print(
    f"cost: {n} backwards + {2 * n} forwards. For an op with n inputs and m outputs: m backwards, 2n forwards"
)

# --------------------------------------------------------------------------------------------------
section("3. The random-direction check: one number instead of a Jacobian")
# --------------------------------------------------------------------------------------------------
# A 7x7 convolution on a real activation has millions of inputs and outputs: its Jacobian is out
# of reach. Chainer's trick: pick a random output weighting w and a random input direction d. Then
#     analytic:  <backward(w), d>                                  (one backward)
#     numeric:   (<w, f(x + eps d)> - <w, f(x - eps d)>) / 2 eps    (two forwards)
# are both the directional derivative of <w, f> along d. A wrong Jacobian entry changes the analytic
# number; for random w and d the change is zero only by a coincidence of probability zero.

rng = np.random.default_rng(1)
rows, features = (8, 16) if args.quick else (32, 64)
a = ag.tensor(rng.standard_normal((rows, features)), requires_grad=True)
W = ag.tensor(rng.standard_normal((features, features)) / np.sqrt(features), requires_grad=True)


def layer(a, W):
    return (a @ W).tanh()


w_out = rng.standard_normal((rows, features))
d_a, d_W = rng.standard_normal(a.shape), rng.standard_normal(W.shape)
layer(a, W).backward(ag.tensor(w_out))
analytic = float((a.grad.numpy() * d_a).sum() + (W.grad.numpy() * d_W).sum())
with ag.no_grad():
    plus = (layer(ag.tensor(a.numpy() + eps * d_a), ag.tensor(W.numpy() + eps * d_W)).numpy() * w_out).sum()
    minus = (layer(ag.tensor(a.numpy() - eps * d_a), ag.tensor(W.numpy() - eps * d_W)).numpy() * w_out).sum()
numeric = (plus - minus) / (2 * eps)
print(
    f"tanh(a @ W), a {a.shape}, W {W.shape}: directional derivative analytic {analytic:.10f}, "
    f"numeric {numeric:.10f}, relative difference {abs(analytic - numeric) / abs(numeric):.1e}"
)

n_in, n_out = a.size + W.size, rows * features
start = time.perf_counter()
gradcheck(layer, [a, W], full_jacobian_max=n_in * n_out)  # force the full Jacobian
full_seconds = time.perf_counter() - start
start = time.perf_counter()
gradcheck(layer, [a, W], full_jacobian_max=0)  # force the random projection
projection_seconds = time.perf_counter() - start
print(
    f"gradcheck, full Jacobian ({n_out} backwards, {2 * n_in} forwards, {n_in * n_out:,} entries): "
    f"{full_seconds * 1e3:8.1f} ms"
)
print(
    f"gradcheck, random projection (1 backward, 2 forwards):                           "
    f"{projection_seconds * 1e3:8.1f} ms"
)
print("(autograd.gradcheck picks the full Jacobian while inputs x outputs <= full_jacobian_max = 4096)")

# --------------------------------------------------------------------------------------------------
section("4. Planted bugs: Functions with a wrong backward")
# --------------------------------------------------------------------------------------------------
# New ops are Function subclasses: forward on arrays, backward right beneath it (lesson 3). Here are
# three that look plausible and are wrong, next to one that is right.


class Softplus(Function):
    """y = log(1 + e^x);  dy/dx = sigmoid(x) = 1 / (1 + e^-x)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.logaddexp(0.0, x)

    def backward(self, grad):
        (x,) = self.saved
        return grad / (1.0 + np.exp(-x))


class SoftplusWrongFormula(Softplus):
    """The bug: the derivative of sigmoid, sigmoid(x)(1 - sigmoid(x)), where sigmoid itself belongs."""

    def backward(self, grad):
        (x,) = self.saved
        s = 1.0 / (1.0 + np.exp(-x))
        return grad * s * (1.0 - s)


class LeakyReLUWrongSlope(Function):
    """y = x for x > 0, else 0.01 x. The bug: backward uses the slope 0.1 on the negative side."""

    def forward(self, x):
        self.save_for_backward(x > 0)
        return np.where(x > 0, x, 0.01 * x)

    def backward(self, grad):
        (positive,) = self.saved
        return np.where(positive, grad, 0.1 * grad)


class SquareForgetsFirst(Function):
    """y = x^2 elementwise. The bug, an indexing slip: the first element's gradient is never written."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, grad):
        (x,) = self.saved
        grad_x = np.zeros_like(x)
        flat_x, flat_grad, flat_out = x.reshape(-1), grad.reshape(-1), grad_x.reshape(-1)
        flat_out[1:] = 2.0 * flat_x[1:] * flat_grad[1:]
        return grad_x


def check(name, fn, shape, buggy=True, **options):
    x = ag.tensor(np.random.default_rng(2).standard_normal(shape), requires_grad=True)
    size = int(np.prod(shape))
    kind = "full Jacobian" if size * size <= options.get("full_jacobian_max", 4096) else "random projection"
    try:
        gradcheck(fn, [x], **options)
        print(
            f"    {name:22s} {str(shape):12s} {kind:18s} passed{'  <- the bug was MISSED' if buggy else ''}"
        )
    except GradcheckError as error:
        print(f"    {name:22s} {str(shape):12s} {kind:18s} CAUGHT:\n        {error}")


check("Softplus", Softplus.apply, (4, 4), buggy=False)
check("SoftplusWrongFormula", SoftplusWrongFormula.apply, (4, 4))
check("LeakyReLUWrongSlope", LeakyReLUWrongSlope.apply, (4, 4))
big = (64, 64) if args.quick else (256, 256)
check("LeakyReLUWrongSlope", LeakyReLUWrongSlope.apply, big)

# The last bug is the hardest for one random direction: a single wrong entry among thousands changes
# the directional derivative by only about 1/size of its value. A tolerance relative to the value
# (rtol 1e-4) would let it hide on a big tensor. But central differences in float64 are accurate to
# about 1e-10 of the terms summed, so gradcheck allows only that much slack for the size of the sum,
# and the bug shows even on the big tensor. Still, one direction is a sample: the test suite checks
# every op on small shapes too, where the full Jacobian looks at every entry.
check("SquareForgetsFirst", SquareForgetsFirst.apply, (4, 4))
check("SquareForgetsFirst", SquareForgetsFirst.apply, big)

# --------------------------------------------------------------------------------------------------
section("5. Figure")
# --------------------------------------------------------------------------------------------------
fig, ax = plt.subplots(figsize=(9, 5.6))
styles = {
    ("float32", True): ("tab:red", "-"),
    ("float32", False): ("tab:red", ":"),
    ("float64", True): ("tab:blue", "-"),
    ("float64", False): ("tab:blue", ":"),
}
floor = 1e-17  # an exact 0 cannot be drawn on a log axis
for (name, central), err in errors.items():
    colour, line = styles[(name, central)]
    ax.loglog(
        epsilons,
        np.maximum(err, floor),
        line,
        color=colour,
        marker="o" if central else None,
        markersize=3,
        label=f"{name}, {'central' if central else 'one-sided'} difference",
    )
for _name, u, colour in (
    ("float32", np.finfo(np.float32).eps / 2, "tab:red"),
    ("float64", np.finfo(np.float64).eps / 2, "tab:blue"),
):
    ax.loglog(epsilons, u * abs(t) / epsilons, "--", color=colour, alpha=0.35, lw=1)
ax.loglog(epsilons, epsilons**2 * abs(third_derivative) / 6, "--", color="0.4", alpha=0.6, lw=1)
ax.text(1e-6, 3e-16, "truncation\n" + r"$\epsilon^2 |f'''| / 6$", color="0.3", fontsize=9)
ax.text(2e-12, 3e-3, "rounding, float32\n" + r"$u\,|f| / \epsilon$", color="tab:red", fontsize=9)
ax.text(1e-12, 1e-9, "rounding, float64\n" + r"$u\,|f| / \epsilon$", color="tab:blue", fontsize=9)
ax.set_ylim(floor / 2, 10)
ax.set_xlabel("step eps")
ax.set_ylabel("|finite difference - exact derivative|")
ax.set_title("d tanh(x)/dx at x = 0.5: error of the finite-difference estimate")
ax.grid(alpha=0.3, which="both")
ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()
fig.savefig(args.out / "eps_sweep.png", dpi=120)
plt.close(fig)
print(f"wrote {args.out / 'eps_sweep.png'}")
