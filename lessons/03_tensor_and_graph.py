"""Lesson 03: our Tensor and the graph it records.

Lesson 2's Value kept, in every result, its parents and a closure. Our Tensor does the same for
whole arrays, with the pieces given names: the op that made a tensor is a `Function` object
(`tensor.grad_fn`), which keeps its inputs (`grad_fn.inputs`) and whatever its forward saved for
its backward. `autograd.graph.backward` walks those ops in reverse topological order.

This lesson builds a small expression, prints its graph, runs backward and checks the gradients by
hand, then shows the rules around it: accumulation, freeing the graph (retain_graph), no_grad,
detach and retain_grad.

    python lessons/03_tensor_and_graph.py --quick
    python lessons/03_tensor_and_graph.py

Figure (in --out, default lessons/output/03/):
    graph.png   the recorded graph of loss = mean(tanh(x @ W + b) ** 2): tensors, ops, and arrows
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import autograd as ag  # noqa: E402
import autograd.graph  # noqa: E402

parser = argparse.ArgumentParser(description="Lesson 03: our Tensor and its graph")
parser.add_argument("--quick", action="store_true", help="accepted for symmetry: this lesson is quick anyway")
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "03",
    help="folder for the figure",
)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


# --------------------------------------------------------------------------------------------------
section("1. Leaves: the tensors we want gradients for")
# --------------------------------------------------------------------------------------------------
# A tensor made by us (not by an op) with requires_grad=True is a leaf: parameters and inputs.
# Constructors take float64 here so the hand-made check below agrees to many digits; the engine's
# default, like PyTorch's, is float32.

rng = np.random.default_rng(0)
x = ag.tensor(rng.standard_normal((4, 3)))  # data: no gradient wanted
W = ag.tensor(rng.standard_normal((3, 2)), requires_grad=True)  # parameters
b = ag.tensor(np.array([0.1, -0.2]), requires_grad=True)
for name, t in (("x", x), ("W", W), ("b", b)):
    print(
        f"{name}: shape {t.shape}, dtype {t.dtype}, requires_grad {t.requires_grad}, "
        f"is_leaf {t.is_leaf}, grad_fn {t.grad_fn}"
    )

# --------------------------------------------------------------------------------------------------
section("2. Recording: every op leaves its Function behind")
# --------------------------------------------------------------------------------------------------
# Written step by step so that every intermediate tensor has a name to print.
xW = x @ W
z = xW + b  # b (2,) is broadcast over the 4 rows
h = z.tanh()
h2 = h**2
loss = h2.mean()
names = {
    id(t): n
    for n, t in (("x", x), ("W", W), ("b", b), ("xW", xW), ("z", z), ("h", h), ("h2", h2), ("loss", loss))
}
print(f"loss = {loss}")
print(f"loss.grad_fn = {loss.grad_fn!r}, its inputs: {[names.get(id(t), '?') for t in loss.grad_fn.inputs]}")
print(f"h2.grad_fn = {h2.grad_fn!r}, its inputs: h and the constant exponent {h2.grad_fn.inputs[1]}")


def print_graph(tensor, depth=0):
    """The graph below `tensor`, one line per tensor, indented by distance from the root."""
    name = names.get(id(tensor), "constant")
    made_by = (
        f"made by {type(tensor.grad_fn).__name__}"
        if tensor.grad_fn is not None
        else ("leaf" if tensor.requires_grad else "no gradient")
    )
    print(f"    {'    ' * depth}{name:8s} {str(tensor.shape):8s} {made_by}")
    if tensor.grad_fn is not None:
        for parent in tensor.grad_fn.inputs:
            print_graph(parent, depth + 1)


print("the graph, from the root back to the leaves:")
print_graph(loss)

# --------------------------------------------------------------------------------------------------
section("3. Topological order: each tensor before the tensors it was made from")
# --------------------------------------------------------------------------------------------------
# Backward must finish a tensor's gradient (sum the contributions of ALL its uses) before passing it
# further down. Reverse topological order guarantees that. Only tensors that need a gradient are
# visited: x and the constant 2 are skipped.
order = autograd.graph.topological_order(loss)
print("autograd.graph.topological_order(loss):")
for position, t in enumerate(order):
    made_by = type(t.grad_fn).__name__ if t.grad_fn is not None else "leaf"
    print(f"    {position}. {names[id(t)]:5s} {str(t.shape):8s} {made_by}")

# The figure is drawn now, while the graph still exists: backward frees it (section 6).
nodes = {}  # id -> (label, layer, kind); tensors on even layers, ops on odd layers
edges = []


def layer_of(tensor):
    """Longest distance from a leaf: leaves at 0, an op one right of its inputs, its output one more."""
    key = id(tensor)
    if key in nodes:
        return nodes[key][1]
    if tensor.grad_fn is None:
        label = names.get(key, f"const {tensor.item():g}" if tensor.size == 1 else "const")
        kind = "leaf" if tensor.requires_grad else "constant"
        nodes[key] = (f"{label}\n{tensor.shape}", 0, kind)
        return 0
    op = tensor.grad_fn
    op_layer = 1 + max(layer_of(parent) for parent in op.inputs)
    nodes[id(op)] = (type(op).__name__, op_layer, "op")
    edges.extend((id(parent), id(op)) for parent in op.inputs)
    edges.append((id(op), key))
    nodes[key] = (f"{names.get(key, '')}\n{tensor.shape}", op_layer + 1, "tensor")
    return op_layer + 1


layer_of(loss)

# --------------------------------------------------------------------------------------------------
section("4. Backward, checked by hand")
# --------------------------------------------------------------------------------------------------
loss.backward()
print(f"W.grad =\n{W.grad.numpy()}\nb.grad = {b.grad.numpy()}")
print(f"x.grad = {x.grad} (x did not ask for one)")

# The same chain rule, written out in NumPy. loss = mean(h^2) over 8 numbers, h = tanh(z):
#     dloss/dh = 2 h / 8,   dloss/dz = dloss/dh * (1 - h^2),
#     dloss/dW = x^T @ dloss/dz,   dloss/db = dloss/dz summed over the 4 rows b was broadcast to.
h_np = np.tanh(x.numpy() @ W.numpy() + b.numpy())
dz = 2 * h_np / h_np.size * (1 - h_np**2)
print(
    f"by hand: largest difference in W.grad {np.abs(x.numpy().T @ dz - W.grad.numpy()).max():.1e}, "
    f"in b.grad {np.abs(dz.sum(axis=0) - b.grad.numpy()).max():.1e}"
)
print(
    "b's gradient arrived with shape (4, 2) and was summed back to (2,) by autograd.graph.sum_to_shape "
    "(lesson 1, section 6)"
)

# --------------------------------------------------------------------------------------------------
section("5. A tensor used twice: contributions add up")
# --------------------------------------------------------------------------------------------------
# out = sum(h * h + h) with h = tanh(v): h feeds two ops, so backward must wait for both before it
# handles h's own op. d out / dv = (2h + 1)(1 - h^2).
v = ag.tensor(np.array([-1.0, 0.0, 0.5, 2.0]), requires_grad=True)
hv = v.tanh()
hh = hv * hv
summed = hh + hv
out = summed.sum()
names.update({id(v): "v", id(hv): "h", id(hh): "h*h", id(summed): "h*h + h", id(out): "out"})
print(
    "reverse topological order: " + "  ->  ".join(names[id(t)] for t in autograd.graph.topological_order(out))
)
print("h comes after both of its uses (h*h and h*h + h), so its gradient is complete when its turn comes")
out.backward()
hv_np = np.tanh(v.numpy())
print(f"v.grad {v.grad.numpy()}\nby hand {(2 * hv_np + 1) * (1 - hv_np**2)}")

# --------------------------------------------------------------------------------------------------
section("6. Gradients accumulate; the graph is freed after backward")
# --------------------------------------------------------------------------------------------------
# .grad is ADDED to by every backward, never overwritten (as lesson 2's +=). That is a feature: a
# batch too large for memory can be split, each half's loss backpropagated, and the gradients add up
# to those of the whole batch. Before the next step they must be cleared (zero_grad).
w = ag.tensor(np.array([1.0, -2.0]), requires_grad=True)
data = ag.tensor(rng.standard_normal((8, 2)))
whole = ((data @ w) ** 2).mean()
whole.backward()
full_batch_grad = w.grad.numpy().copy()
w.zero_grad()
for half in (data[:4], data[4:]):
    (((half @ w) ** 2).mean() / 2).backward()  # each half's mean, weighted by its share
print(f"whole batch: {full_batch_grad},  two halves accumulated: {w.grad.numpy()}")

# After backward, each op drops its inputs and saved arrays (memory: in a network these are the
# activations). A second backward through the same graph is then an error, unless the first one
# was told retain_graph=True.
print(f"whole.grad_fn after backward: {whole.grad_fn!r}")
try:
    whole.backward()
except RuntimeError as error:
    print(f"second backward: RuntimeError: {error}")
w.zero_grad()
again = ((data @ w) ** 2).mean()
again.backward(retain_graph=True)
first = w.grad.numpy().copy()
again.backward()
print(f"with retain_graph=True: after one backward {first}, after two {w.grad.numpy()} (added twice)")

# --------------------------------------------------------------------------------------------------
section("7. no_grad, detach and retain_grad")
# --------------------------------------------------------------------------------------------------
# Under no_grad nothing is recorded: outputs have no grad_fn and keep no inputs alive. Use it for
# evaluation and for the parameter update itself (the update is not part of the model).
with ag.no_grad():
    evaluated = (data @ w).tanh()
print(f"under no_grad: requires_grad {evaluated.requires_grad}, grad_fn {evaluated.grad_fn}")

# The parameter update is not part of the model: it changes the leaf's array in place, unrecorded.
# That is what the optimizers in autograd/optim do (p.data -= lr * p.grad.data).
learning_rate = 0.1
w.zero_grad()
((data @ w) ** 2).mean().backward()
before = w.numpy().copy()
w.data -= learning_rate * w.grad.data
w.zero_grad()
print(f"one gradient-descent step: w {before} -> {w.numpy()}, still a leaf: {w.is_leaf}")

# detach() cuts one tensor out of the graph: the same numbers, no history. Gradients stop there.
u = ag.tensor(np.array([2.0]), requires_grad=True)
stopped = (u * u).detach() * u  # d/du = u^2 (the detached u*u counts as a constant), not 3 u^2
stopped.sum().backward()
print(f"d/du of detach(u*u) * u at u = 2: {u.grad.numpy()} (u^2 = 4; without detach it would be 3u^2 = 12)")

# Only leaves keep .grad by default; retain_grad() asks an intermediate tensor to keep its own.
middle = (u * 3.0).retain_grad()
(middle**2).sum().backward()
print(f"middle = 3u = {middle.numpy()}, d(middle^2)/d middle kept by retain_grad: {middle.grad.numpy()}")

# --------------------------------------------------------------------------------------------------
section("8. Figure")
# --------------------------------------------------------------------------------------------------
# Layout: the chain of ops and their outputs runs along y = 0; each leaf or constant sits just left
# of the op that uses it, above or below the chain.
position = {
    key: (layer * 1.6, 0.0) for key, (label, layer, kind) in nodes.items() if kind in ("op", "tensor")
}
for key, (_label, _layer, kind) in nodes.items():
    if kind in ("leaf", "constant"):
        consumer = next(target for source, target in edges if source == key)
        column = (nodes[consumer][1] - 1) * 1.6
        taken = [py for px, py in position.values() if px == column]
        free = next(y for y in (0.0, 1.2, -1.2, 2.4, -2.4) if y not in taken)
        position[key] = (column, free)

fig, ax = plt.subplots(figsize=(13, 3.8))
colours = {"leaf": "#ffd166", "constant": "#e9ecef", "tensor": "#a8dadc", "op": "#f4a261"}
for source, target in edges:
    (x0, y0), (x1, y1) = position[source], position[target]
    ax.annotate(
        "",
        xy=(x1, y1),
        xytext=(x0, y0),
        arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2, shrinkA=22, shrinkB=22),
    )
for key, (label, _layer, kind) in nodes.items():
    px, py = position[key]
    box = "round,pad=0.35" if kind != "op" else "circle,pad=0.25"
    ax.text(
        px,
        py,
        label,
        ha="center",
        va="center",
        fontsize=9,
        bbox=dict(boxstyle=box, facecolor=colours[kind], edgecolor="0.3"),
    )
handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colours[k], edgecolor="0.3") for k in colours]
ax.legend(
    handles,
    ["leaf (requires_grad)", "constant / no grad", "tensor made by an op", "op (Function)"],
    loc="upper center",
    fontsize=8,
    ncol=4,
    bbox_to_anchor=(0.5, -0.02),
)
ax.set_xlim(-0.8, max(p[0] for p in position.values()) + 0.8)
ax.set_ylim(min(p[1] for p in position.values()) - 0.7, max(p[1] for p in position.values()) + 0.7)
ax.axis("off")
ax.set_title(
    "The graph recorded for loss = mean(tanh(x @ W + b) ** 2). "
    "Forward runs left to right; backward walks the arrows back, right to left",
    fontsize=10,
)
fig.tight_layout()
fig.savefig(args.out / "graph.png", dpi=120)
plt.close(fig)
print(f"wrote {args.out / 'graph.png'}")
