"""Lesson 02: a scalar autograd in about fifty lines, and why we then need tensors.

Reverse-mode automatic differentiation fits in one small class. Every operation on a `Value` does
two things: it computes its result, and it leaves behind a closure that knows how to push the
result's gradient back to the operation's inputs (the chain rule, one local step at a time).
`backward()` then calls those closures from the output back to the inputs. This is Andrej Karpathy's
micrograd idea; our engine (`autograd/`) is the same idea with arrays in place of numbers.

    python lessons/02_scalar_autograd.py --quick
    python lessons/02_scalar_autograd.py

Figure (in --out, default lessons/output/02/):
    moons.png   the two-moons data, the boundary the scalar MLP learned, and its loss curve
"""

import inspect
import math
import time

import numpy as np
from common import lesson_setup, plt, save_figure, section

args = lesson_setup("02", "a scalar autograd, and why we need tensors")  # before the engine's import

import autograd as ag  # noqa: E402

# --------------------------------------------------------------------------------------------------
section("1. The whole engine: a Value, its operations, and backward")
# --------------------------------------------------------------------------------------------------
# Read each operation as a pair: the forward line computes `out`, and `push` says, for each input,
# d(out)/d(input) times out.grad (the chain rule). Gradients are ADDED (+=), because a value used
# twice receives a contribution from each use.


class Value:
    """A scalar that remembers how it was made, so that gradients can flow back through it."""

    def __init__(self, data, parents=()):
        self.data, self.grad, self.parents = float(data), 0.0, parents
        self.push = lambda: None  # sends self.grad back into the parents' .grad

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def push():
            self.grad += out.grad
            other.grad += out.grad

        out.push = push
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def push():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out.push = push
        return out

    def __pow__(self, k):  # k is a plain number
        out = Value(self.data**k, (self,))

        def push():
            self.grad += k * self.data ** (k - 1) * out.grad

        out.push = push
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,))

        def push():
            self.grad += (1.0 - t * t) * out.grad

        out.push = push
        return out

    def backward(self):
        # Topological order: every value after the values it was made from (an explicit stack, so a
        # long chain cannot overflow Python's recursion limit). Then walk it from the output back.
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, parents_done = stack.pop()
            if parents_done:
                order.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))
                stack.extend((p, False) for p in v.parents)
        self.grad = 1.0
        for v in reversed(order):
            v.push()

    # Everything else is built from the four operations above.
    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other**-1.0


lines = [line for line in inspect.getsource(Value).splitlines() if line.strip()]
print(
    f"class Value: {len(lines)} non-blank lines. Its own operations: +, *, ** (by a number), tanh; "
    f"-, / and negation are built from them"
)

# --------------------------------------------------------------------------------------------------
section("2. Does it give the right derivatives?")
# --------------------------------------------------------------------------------------------------
# f(a, b, c) = tanh(a * b + c) / a, at a = 1.5, b = -0.5, c = 0.25. By hand, with t = tanh(a b + c):
#     df/da = (1 - t^2) b / a - t / a^2,    df/db = (1 - t^2),    df/dc = (1 - t^2) / a.

a, b, c = Value(1.5), Value(-0.5), Value(0.25)
f = (a * b + c).tanh() / a
f.backward()
t = math.tanh(1.5 * -0.5 + 0.25)
by_hand = {"a": (1 - t * t) * -0.5 / 1.5 - t / 1.5**2, "b": (1 - t * t), "c": (1 - t * t) / 1.5}
print(f"f = {f.data:.6f}")
for name, v in (("a", a), ("b", b), ("c", c)):
    print(f"    df/d{name}: backward {v.grad:+.10f}   by hand {by_hand[name]:+.10f}")

# And against a central finite difference (lesson 4 is all about this check):
eps = 1e-6


def f_of(av, bv, cv):
    return math.tanh(av * bv + cv) / av


numeric_da = (f_of(1.5 + eps, -0.5, 0.25) - f_of(1.5 - eps, -0.5, 0.25)) / (2 * eps)
print(f"    df/da by finite difference {numeric_da:+.10f}")

# A value used twice: g = x * x + x. dg/dx = 2x + 1; both uses of x add into x.grad.
x = Value(3.0)
g = x * x + x
g.backward()
print(f"g = x*x + x at x = 3: dg/dx = {x.grad} (2x + 1 = 7): the += collected all three uses of x")

# --------------------------------------------------------------------------------------------------
section("3. Training a tiny network on two moons, one scalar at a time")
# --------------------------------------------------------------------------------------------------
# A multilayer perceptron 2 -> H -> 1 with tanh units, every weight a Value. The data: two
# interleaving half-circles, labels -1 and +1. Loss: mean squared error between tanh(score) and the
# label. Training: plain gradient descent on the whole set.

rng = np.random.default_rng(0)
n_points = 40 if args.quick else 60
hidden = 8 if args.quick else 12
steps = 100 if args.quick else 200
learning_rate = 0.5


def make_moons(n, noise=0.1):
    angle = rng.uniform(0.0, math.pi, n)
    first = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    second = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    label = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
    points = np.where(label[:, None] < 0, first, second) + noise * rng.standard_normal((n, 2))
    return (points - [0.5, 0.25]) / [1.0, 0.5], label  # centred, both axes of similar spread


points, labels = make_moons(n_points)
w1 = [[Value(rng.normal(0, 1 / math.sqrt(2))) for _ in range(2)] for _ in range(hidden)]
b1 = [Value(0.0) for _ in range(hidden)]
w2 = [Value(rng.normal(0, 1 / math.sqrt(hidden))) for _ in range(hidden)]
b2 = Value(0.0)
parameters = [w for row in w1 for w in row] + b1 + w2 + [b2]
print(f"{n_points} points, MLP 2 -> {hidden} -> 1: {len(parameters)} parameters, each a Value")


def mlp(x0, x1):
    h = [(w[0] * x0 + w[1] * x1 + bias).tanh() for w, bias in zip(w1, b1, strict=False)]
    return (sum((wj * hj for wj, hj in zip(w2, h, strict=False)), b2)).tanh()


losses, accuracies = [], []
start = time.perf_counter()
for step in range(steps):
    outputs = [mlp(p0, p1) for p0, p1 in points]
    loss = sum((o - y) ** 2 for o, y in zip(outputs, labels, strict=False)) / n_points
    for p in parameters:
        p.grad = 0.0  # gradients accumulate (+=), so clear them before each backward
    loss.backward()
    for p in parameters:
        p.data -= learning_rate * p.grad
    accuracy = np.mean([(o.data > 0) == (y > 0) for o, y in zip(outputs, labels, strict=False)])
    losses.append(loss.data)
    accuracies.append(accuracy)
    if step % (steps // 6) == 0 or step == steps - 1:
        print(f"    step {step:4d}   loss {loss.data:.4f}   accuracy {accuracy:.0%}")
train_seconds = time.perf_counter() - start
print(f"{steps} steps in {train_seconds:.2f} s ({train_seconds / steps * 1e3:.1f} ms per step)")

# How big was one step's graph? Count the Values behind one loss.
outputs = [mlp(p0, p1) for p0, p1 in points]
loss = sum((o - y) ** 2 for o, y in zip(outputs, labels, strict=False)) / n_points
seen, stack = set(), [loss]
while stack:
    v = stack.pop()
    if v not in seen:
        seen.add(v)
        stack.extend(v.parents)
print(f"one loss is the end of a graph of {len(seen):,} Values: each is a Python object with a closure")

# --------------------------------------------------------------------------------------------------
section("4. Why we need tensors: the same work on arrays")
# --------------------------------------------------------------------------------------------------
# Every Value costs a Python object, a closure and several interpreter steps, in the forward and
# again in the backward. An image network does billions of multiply-adds per step: one object per
# number is out of the question. A Tensor holds a whole array; one node of its graph stands for a
# whole matrix product, and the arithmetic runs in compiled loops.
#
# The test problem: least squares, loss(w) = mean((X w - y)^2) for X of shape (n, n), gradient with
# respect to w. Same numbers in both engines (float64), timed forward + backward.

sizes = [4, 8, 16, 32, 48] if args.quick else [4, 8, 16, 32, 64, 96, 128]
repeats = 3 if args.quick else 5


def best_time(fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


scalar_times, tensor_times, worst_difference = [], [], 0.0
print(f"{'n':>5s} {'multiply-adds':>14s} {'Value (ms)':>12s} {'Tensor (ms)':>12s} {'ratio':>8s}")
for n in sizes:
    X = rng.standard_normal((n, n))
    y = rng.standard_normal(n)
    w0 = rng.standard_normal(n)

    def scalar_step(w0=w0, X=X, y=y, n=n):
        w = [Value(v) for v in w0]
        residuals = [
            sum((xij * wj for xij, wj in zip(row, w, strict=False)), Value(0.0)) - yi
            for row, yi in zip(X, y, strict=False)
        ]
        loss = sum((r * r for r in residuals), Value(0.0)) / n
        loss.backward()
        return np.array([wj.grad for wj in w])

    def tensor_step(w0=w0, X=X, y=y):
        w = ag.tensor(w0, requires_grad=True)
        loss = ((ag.tensor(X) @ w - ag.tensor(y)) ** 2).mean()
        loss.backward()
        return w.grad.numpy()

    worst_difference = max(worst_difference, float(np.abs(scalar_step() - tensor_step()).max()))
    scalar_times.append(best_time(scalar_step))
    tensor_times.append(best_time(tensor_step))
    print(
        f"{n:5d} {n * n:14,d} {scalar_times[-1] * 1e3:12.3f} {tensor_times[-1] * 1e3:12.3f} "
        f"{scalar_times[-1] / tensor_times[-1]:7.0f}x"
    )
print(f"largest difference between the two engines' gradients: {worst_difference:.1e} (float64 rounding)")
per_op = scalar_times[-1] / (2 * sizes[-1] ** 2)
print(
    f"the scalar engine spends about {per_op * 1e6:.1f} us per multiply or add (forward + backward); "
    f"the Tensor's time hardly grows until the arrays are large"
)
# At the larger sizes the scalar time grows faster than the work. Each Value and its closure form a
# reference cycle (out.push refers to out), so Python's cycle collector runs again and again over a
# growing heap of live Values: one more cost of one object per number.

# The MLP of section 3 as Tensors: the hidden layer is one matrix product for all points at once.
W1 = ag.tensor(np.array([[w.data for w in row] for row in w1]), requires_grad=True)
B1 = ag.tensor(np.array([v.data for v in b1]), requires_grad=True)
W2 = ag.tensor(np.array([v.data for v in w2]), requires_grad=True)
B2 = ag.tensor(np.array(b2.data), requires_grad=True)
P, Y = ag.tensor(points), ag.tensor(labels)


def tensor_mlp_step():
    scores = ((P @ W1.T + B1).tanh() @ W2 + B2).tanh()
    loss = ((scores - Y) ** 2).mean()
    loss.backward()
    return loss


tensor_loss = tensor_mlp_step()
print(f"the trained MLP's loss: Value {loss.data:.10f}, Tensor {tensor_loss.item():.10f}")
print(
    f"one training step of that MLP: Value {train_seconds / steps * 1e3:.1f} ms, "
    f"Tensor {best_time(tensor_mlp_step) * 1e3:.3f} ms"
)

# --------------------------------------------------------------------------------------------------
section("5. Figure")
# --------------------------------------------------------------------------------------------------
# The learned weights, evaluated on a 200 x 200 grid as arrays (40,000 points through the Value engine
# would take minutes; with NumPy it is the same arithmetic in a few milliseconds).
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
gx, gy = np.meshgrid(np.linspace(-2.2, 2.2, 200), np.linspace(-2.6, 2.6, 200))
hidden_grid = np.tanh(np.stack([gx.ravel(), gy.ravel()], 1) @ W1.numpy().T + B1.numpy())
score = np.tanh(hidden_grid @ W2.numpy() + B2.numpy()).reshape(gx.shape)
left.contourf(gx, gy, score, levels=np.linspace(-1, 1, 21), cmap="RdBu", alpha=0.45)
left.contour(gx, gy, score, levels=[0.0], colors="black", linewidths=1.5)
for value, colour in ((-1.0, "#b2182b"), (1.0, "#2166ac")):
    chosen = labels == value
    left.scatter(*points[chosen].T, c=colour, edgecolors="white", s=40, label=f"label {value:+.0f}")
left.set(title=f"what the scalar MLP learned ({steps} steps), black line: score 0", xlabel="x0", ylabel="x1")
left.legend(loc="lower right")
right.semilogy(losses, color="tab:blue")
right.set(
    xlabel="gradient-descent step", ylabel="loss (blue; mean squared error, log scale)", title="training"
)
right.grid(alpha=0.3, which="both")
twin = right.twinx()
twin.plot(accuracies, color="tab:orange")
twin.set(ylim=(0, 1.02), ylabel="training accuracy (orange)")
save_figure(fig, "moons.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. In Value.__mul__, write `self.grad = other.data * out.grad` (= instead of +=). Which check of section 2
#    goes wrong first, and what does g = x*x + x give for dg/dx now? (Predict the number.)
# 2. Add a method `exp` to Value (forward math.exp, and its push). Predict d/dx of exp(x) * x at x = 1
#    before you print it, and check it against a finite difference as in section 2.
# 3. In section 3, set learning_rate to 5.0, then to 0.01. Predict which one ends with the better accuracy
#    after the same number of steps, and what the loss curve of the other looks like.
