"""Lesson 03: our Tensor and the graph it records.

Lesson 2's Value kept, in every result, its parents and a closure. Our Tensor does the same for
whole arrays, with the pieces given names: the op that made a tensor is a `Function` object
(`tensor.grad_fn`), which keeps its inputs (`grad_fn.inputs`) and whatever its forward saved for
its backward. `autograd.graph.backward` walks those ops in reverse topological order.

This lesson builds a small expression, prints its graph, then opens the engine: `Function.apply`
(how an op is recorded) and `autograd.graph.backward` (the whole backward pass), printed from their own
source. It runs backward and checks the gradients by hand, shows the rules around it (accumulation,
freeing the graph, no_grad, detach, retain_grad), and ends by writing a new op, a `Function` subclass
with its forward and backward, and proving its backward with `autograd.gradcheck`.

    python lessons/03_tensor_and_graph.py --quick
    python lessons/03_tensor_and_graph.py

Figure (in --out, default lessons/output/03/):
    graph.png   the recorded graph of loss = mean(tanh(x @ W + b) ** 2): tensors, ops, and arrows
"""

import inspect
import textwrap

import numpy as np
from common import lesson_setup, plt, save_figure, section

# Options first, before the engine is imported: a bad option is refused at once.
args = lesson_setup("03", "our Tensor and its graph")

import autograd as ag  # noqa: E402
import autograd.graph  # noqa: E402

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
section("3. Inside the engine: what Function.apply records")
# --------------------------------------------------------------------------------------------------
# Every op above (MatMul, Add, Tanh, Pow, Mean) is a subclass of autograd.Function, and every call went
# through the same classmethod, Function.apply. Here it is, from the engine's own source:
print(textwrap.dedent(inspect.getsource(ag.Function.apply)))
# Read it in five parts.
#   * The checks: only Tensors (or None for an absent optional input, such as a bias), all on one device.
#   * `ctx = cls()`: one fresh object per call. That object IS the node of the graph: `loss.grad_fn` above
#     is the Mean object made when `h2.mean()` ran. needs_input_grad remembers which inputs want a gradient.
#   * `record`: the graph is kept only when gradients are on (not inside no_grad, section 9) and at least
#     one input requires a gradient. That is why x @ W is recorded (W wants one) and x alone would not be.
#   * `arrays`: forward receives raw NumPy (or CuPy) arrays, never Tensors, so nothing inside an op is
#     recorded: one op, one node. kernel_for asks whether a fast kernel runs this op on these arrays
#     (lesson 6); when none does, the op's own `forward` runs.
#   * The output: a new Tensor; when recording, the op keeps its inputs and becomes the output's
#     creator (`out._ctx`, which `grad_fn` returns). Whatever forward saved (save_for_backward) stays
#     in the op until backward has used it.
print(f"loss.grad_fn = {loss.grad_fn!r}, an autograd.Function: {isinstance(loss.grad_fn, ag.Function)}")
print(
    f"what h's Tanh saved for its backward: {[a.shape for a in h.grad_fn.saved]} (tanh's output, for 1 - h^2)"
)

# --------------------------------------------------------------------------------------------------
section("4. Topological order: each tensor before the tensors it was made from")
# --------------------------------------------------------------------------------------------------
# Backward must finish a tensor's gradient (sum the contributions of ALL its uses) before passing it
# further down. Reverse topological order guarantees that. Only tensors that need a gradient are
# visited: x and the constant 2 are skipped.
order = autograd.graph.topological_order(loss)
print("autograd.graph.topological_order(loss):")
for position, t in enumerate(order):
    made_by = type(t.grad_fn).__name__ if t.grad_fn is not None else "leaf"
    print(f"    {position}. {names[id(t)]:5s} {str(t.shape):8s} {made_by}")

# The figure is drawn now, while the graph still exists: backward frees it (section 8).
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
section("5. Backward, checked by hand")
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
section("6. Inside the engine: autograd.graph.backward")
# --------------------------------------------------------------------------------------------------
# loss.backward() above called this function. The whole backward pass of the engine, from its source:
print(textwrap.dedent(inspect.getsource(autograd.graph.backward)))
# Read it from the top.
#   * The first gradient: d loss / d loss = 1 for a scalar root (an array of ones); a non-scalar root
#     needs the caller to give one of its shape.
#   * `grads` maps each tensor (by id) to the gradient collected for it so far. Only the root has one
#     at the start.
#   * The loop visits tensors in topological order (section 4): every tensor before the tensors it was
#     made from, so by the time a tensor's turn comes, every use of it has already added its share.
#   * A leaf (no op made it), or a tensor that asked for retain_grad (section 9), adds the gradient into
#     its .grad. An op's output hands the gradient to its op's backward (the fast kernel's backward when
#     a fast kernel ran forward), which returns one gradient per input.
#   * Each input gradient is summed back to the input's shape (sum_to_shape: b's (4, 2) -> (2,)), cast to
#     the input's dtype, and ADDED to what that input has collected: a tensor used twice gets both shares
#     (section 7).
#   * Finally the op releases its inputs and saved arrays unless retain_graph=True (section 8).
# That is all of reverse mode. The rest of the engine is ops: Function subclasses, each a forward and a
# backward in a few lines of array math.

# --------------------------------------------------------------------------------------------------
section("7. A tensor used twice: contributions add up")
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
section("8. Gradients accumulate; the graph is freed after backward")
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
section("9. no_grad, detach and retain_grad")
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
section("10. A new op of our own: a Function subclass, gradchecked")
# --------------------------------------------------------------------------------------------------
# SiLU (also called swish), x * sigmoid(x), is a smooth cousin of ReLU and of the GELU ConvNeXt uses
# (lesson 7). With s = sigmoid(x) and ds/dx = s (1 - s), the product rule gives
#     d silu / dx = s + x s (1 - s) = s (1 + x (1 - s)).
# forward works on arrays and saves what backward needs; backward returns d loss / d x from the
# upstream gradient d loss / d y. `xp` is NumPy or CuPy, whichever holds the array, so the same lines
# run on a GPU.


class SiLU(ag.Function):
    """y = x * sigmoid(x);  dy/dx = s (1 + x (1 - s)) with s = sigmoid(x)."""

    def forward(self, x):
        xp = ag.get_array_module(x)
        s = 1.0 / (1.0 + xp.exp(-x))
        self.save_for_backward(x, s)
        return x * s

    def backward(self, grad):
        x, s = self.saved
        return grad * s * (1.0 + x * (1.0 - s))


def silu(x):
    """The public face of the op, as every op of the engine has one (DeZero's style)."""
    return SiLU.apply(x)


u = ag.tensor(np.linspace(-4.0, 4.0, 9), requires_grad=True)
y = silu(u)
print(f"silu(u) = {y.numpy().round(4)}")
print(f"y.grad_fn = {y.grad_fn!r}: one node, holding the {len(y.grad_fn.saved)} arrays its forward saved")
# gradcheck (lesson 4 explains it) compares backward against finite differences, in float64:
print(f"autograd.gradcheck(silu, [u]) -> {ag.gradcheck(silu, [u])}")
# The same function built from the engine's own ops gives the same numbers, through two nodes:
u.zero_grad()  # gradcheck ran backward on u, and gradients accumulate (section 8)
y.sum().backward()
ours = u.grad.numpy().copy()
u.zero_grad()
composed = u * u.sigmoid()
composed.sum().backward()
value_difference = np.abs(y.numpy() - composed.numpy()).max()
print(
    f"against u * u.sigmoid() (two ops, {type(composed.grad_fn).__name__} and Sigmoid): largest difference "
    f"in value {value_difference:.1e}, in gradient {np.abs(ours - u.grad.numpy()).max():.1e}"
)
# And it trains like any op: one gradient-descent step on a float32 parameter.
p = ag.tensor(np.array([0.5, -1.0], dtype=np.float32), requires_grad=True)
silu(p).sum().backward()
print(f"float32 works too: d sum(silu(p)) / dp at p = {p.numpy()}: {p.grad.numpy()} ({p.grad.dtype})")

# --------------------------------------------------------------------------------------------------
section("11. Figure")
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
arrow = dict(arrowstyle="->", color="0.3", lw=1.2, shrinkA=22, shrinkB=22)
for source, target in edges:
    ax.annotate("", xy=position[target], xytext=position[source], arrowprops=arrow)
for key, (label, _layer, kind) in nodes.items():
    box = dict(boxstyle="circle,pad=0.25" if kind == "op" else "round,pad=0.35", facecolor=colours[kind])
    ax.text(*position[key], label, ha="center", va="center", fontsize=9, bbox=box)
handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colours[k], edgecolor="0.3") for k in colours]
names_of_kinds = ["leaf (requires_grad)", "constant / no grad", "tensor made by an op", "op (Function)"]
ax.legend(handles, names_of_kinds, loc="upper center", fontsize=8, ncol=4, bbox_to_anchor=(0.5, -0.02))
xs, ys = zip(*position.values(), strict=True)
ax.set(xlim=(-0.8, max(xs) + 0.8), ylim=(min(ys) - 0.7, max(ys) + 0.7))
ax.axis("off")
ax.set_title(
    "The graph recorded for loss = mean(tanh(x @ W + b) ** 2). "
    "Forward runs left to right; backward walks the arrows back, right to left",
    fontsize=10,
)
save_figure(fig, "graph.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. In SiLU.backward, drop the `1.0 +` (a plausible slip: s * x * (1 - s)). Predict what gradcheck says in
#    section 10, and which entry of u it names as worst (where is the missing term s largest?).
# 2. In section 1, create W without requires_grad=True. Predict which lines of the topological order in
#    section 4 disappear, and why xW is one of them (look at `record` in Function.apply). Section 5 then
#    stops with an error: which one?
# 3. Gradcheck silu(silu(u)) in section 10. Predict the answer, and say why you did not need to write a
#    backward for the composition (look at the loop in graph.backward).
