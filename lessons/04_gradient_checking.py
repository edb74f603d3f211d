"""Lesson 04: gradient checking.

Every op of the engine has a hand-written backward, and a hand-written backward can be wrong while
the network still trains, only worse. The cure is to compare backward against the definition of a
derivative, evaluated numerically:

    df/dx  ~  (f(x + eps) - f(x - eps)) / (2 eps)          (central difference)

This lesson measures how good that estimate is (and why the check must run in float64), checks a
whole Jacobian, derives softmax cross-entropy's backward by hand ((p - y) / N) and checks it three
ways, shows the cheap random-direction check that `autograd.gradcheck` uses for large inputs, and
finally plants three bugs in hand-written Functions and watches the checks catch them.

    python lessons/04_gradient_checking.py --quick
    python lessons/04_gradient_checking.py

Figure (in --out, default lessons/output/04/):
    eps_sweep.png   finite-difference error against the step eps, float32 and float64: the V
"""

import time

import numpy as np
from common import lesson_setup, plt, save_figure, section

# Options first, before the engine is imported: a bad option is refused at once.
args = lesson_setup("04", "gradient checking")

import autograd as ag  # noqa: E402
from autograd import Function, GradcheckError, gradcheck  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

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
section("3. Softmax cross-entropy: its backward derived by hand")
# --------------------------------------------------------------------------------------------------
# The loss every classifier in these lessons trains with. Logits z (N, K), one row per image; targets q
# (N, K), one probability distribution per row: one-hot for a label y (q_ik = 1 if k == y_i, else 0),
# or with label smoothing eps, q = (1 - eps) onehot + eps / K (lesson 11), whose rows still sum to 1.
#     p_i = softmax(z_i),   l_i = -sum_k q_ik log p_ik,   L = (1/N) sum_i l_i.
# Step 1, log softmax. log p_ik = z_ik - log sum_j exp(z_ij), so
#     d log p_ik / d z_ij = [k == j] - exp(z_ij) / sum_m exp(z_im) = [k == j] - p_ij.
# Step 2, the sum over k (the chain rule):
#     d l_i / d z_ij = -sum_k q_ik ([k == j] - p_ij) = p_ij sum_k q_ik - q_ij = p_ij - q_ij,
#   because the row q_i sums to 1.
# Step 3, the mean: l_i depends only on row i of z, and enters L with the weight 1/N:
#     dL/dz = (p - q) / N.
# Section 2's K x K softmax Jacobian, one per row, collapses into one subtraction. That is why frameworks
# fuse softmax and cross-entropy into one op (F.cross_entropy). It is also the stable way: log p comes
# straight from z minus a log-sum-exp, never as the log of a probability that rounded to 0.


def cross_entropy_by_hand(z, labels, label_smoothing):
    """Mean cross-entropy of logits z (N, K) against integer labels, and its gradient (p - q) / N."""
    n, k = z.shape
    shifted = z - z.max(axis=1, keepdims=True)  # the same softmax; exp can no longer overflow
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    q = np.full((n, k), label_smoothing / k)
    q[np.arange(n), labels] += 1.0 - label_smoothing
    return -(q * log_p).sum() / n, (np.exp(log_p) - q) / n


n_images, n_classes, smoothing = 6, 10, 0.1
logits = np.random.default_rng(3).standard_normal((n_images, n_classes)) * 3.0
labels = np.random.default_rng(4).integers(0, n_classes, n_images)
loss_by_hand, grad_by_hand = cross_entropy_by_hand(logits, labels, smoothing)
z = ag.tensor(logits, requires_grad=True)
engine_loss = F.cross_entropy(z, labels, label_smoothing=smoothing)
engine_loss.backward()
print(f"{n_images} images, {n_classes} classes, label smoothing {smoothing}:")
print(f"    loss by hand {loss_by_hand:.12f}, F.cross_entropy {engine_loss.item():.12f}")
print(f"    dL/dz: largest |by hand - engine's backward| {np.abs(grad_by_hand - z.grad.numpy()).max():.1e}")
# Read one row: the label's logit is pushed up (p - q < 0 there), every other logit down in proportion
# to the probability it took; with smoothing, even a class at p = 0 gets a small push up (-eps / K).
first = grad_by_hand[0] * n_images  # p - q for image 0
print(f"    image 0, label {labels[0]}: N dL/dz = p - q = {first.round(3)}")
print(
    f"    each row of p - q sums to {np.abs(grad_by_hand.sum(axis=1)).max():.0e}: adding a constant to every "
    "logit of an image changes nothing"
)


# The derivation stands on its own: written as a Function (lesson 3), it passes gradcheck with no help
# from the engine's own op.
class CrossEntropyByHand(Function):
    def forward(self, z, labels, label_smoothing):
        loss, grad = cross_entropy_by_hand(z, labels, label_smoothing)
        self.save_for_backward(grad)
        return np.asarray(loss)

    def backward(self, grad):
        (grad_z,) = self.saved
        return grad * grad_z


def by_hand_loss(t):
    return CrossEntropyByHand.apply(t, labels=labels, label_smoothing=smoothing)


print(f"    gradcheck(the by-hand Function) -> {gradcheck(by_hand_loss, [z])}")
print(
    "    gradcheck(F.cross_entropy)      -> "
    f"{gradcheck(lambda t: F.cross_entropy(t, labels, label_smoothing=smoothing), [z])}"
)

# --------------------------------------------------------------------------------------------------
section("4. The random-direction check: one number instead of a Jacobian")
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
section("5. Planted bugs: Functions with a wrong backward")
# --------------------------------------------------------------------------------------------------
# New ops are Function subclasses, forward on arrays and backward right beneath it, as lesson 3's SiLU
# and section 3's cross-entropy. Here are three planted bugs: Functions that look plausible and are
# wrong, next to one that is right.


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
section("6. Figure")
# --------------------------------------------------------------------------------------------------
# The measured errors, with the two error formulas of section 1 as dashed lines: the V is their sum.
fig, ax = plt.subplots(figsize=(9, 5.6))
colours = {"float32": "tab:red", "float64": "tab:blue"}
label_at = {"float32": (2e-12, 3e-3), "float64": (1e-12, 1e-9)}  # beside each dashed rounding line
floor = 1e-17  # an exact 0 cannot be drawn on a log axis
for (name, central), err in errors.items():
    kind = "central" if central else "one-sided"
    style = dict(color=colours[name], marker="o" if central else None, markersize=3)
    ax.loglog(epsilons, np.maximum(err, floor), "-" if central else ":", label=f"{name}, {kind}", **style)
for name, colour in colours.items():
    rounding = np.finfo(name).eps / 2 * abs(t) / epsilons
    ax.loglog(epsilons, rounding, "--", color=colour, alpha=0.35, lw=1)
    ax.text(*label_at[name], f"rounding, {name}\n" + r"$u\,|f| / \epsilon$", color=colour, fontsize=9)
truncation = epsilons**2 * abs(third_derivative) / 6
ax.loglog(epsilons, truncation, "--", color="0.4", alpha=0.6, lw=1)
ax.text(1e-6, 3e-16, "truncation\n" + r"$\epsilon^2 |f'''| / 6$", color="0.3", fontsize=9)
ax.set(ylim=(floor / 2, 10), xlabel="step eps", ylabel="|finite difference - exact derivative|")
ax.set_title(f"d tanh(x)/dx at x = {x0}: error of the finite-difference estimate")
ax.grid(alpha=0.3, which="both")
ax.legend(loc="lower left", fontsize=8)
save_figure(fig, "eps_sweep.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. In section 1, move x0 from 0.5 to 3.0, where tanh is almost flat. Predict how the V of the figure
#    moves: does the best eps change, and does the smallest error grow or shrink? (Use the two formulas.)
# 2. In cross_entropy_by_hand, forget the mean: return (np.exp(log_p) - q) without "/ n". Predict the
#    ratio between the wrong and the right gradient, and whether gradcheck of the by-hand Function notices.
# 3. Plant a fourth bug: in Softplus.backward, return grad / (1.0 + np.exp(x)) (a lost minus sign). Predict
#    at which x the error is largest, and whether the (4, 4) check catches it.
