"""Lesson 10: modules and parameters, the optimisers, and the training loop.

Lessons 1 to 9 computed gradients. Training is what is done with them: something must hold the weights
(a `Module` and its `Parameter`s), something must turn gradients into a change of the weights (an
optimiser), and a loop must repeat the two. This lesson opens all three:

  * how a `Module` finds its parameters (nothing is declared: assigning an attribute registers it), their
    dotted names and the state dict built from them;
  * SGD, SGD with momentum, Adam and AdamW, each in a few lines of NumPy, each checked step by step against
    `autograd.optim` (the same numbers), each trained on the same small problem;
  * a training loop of our own, in a handful of lines: the loop lesson 11's trainer runs, without the recipe.

    python lessons/10_modules_optimisers_and_the_loop.py --quick
    python lessons/10_modules_optimisers_and_the_loop.py

Figures (in --out, default lessons/output/10/):
    optimisers.png   the training loss per step of the four optimisers on the same problem and start
"""

import inspect

import numpy as np
from common import lesson_setup, plt, save_figure, section

args = lesson_setup("10", "modules, optimisers and the loop")  # before the engine: a bad option exits at once

import autograd as ag  # noqa: E402
from autograd import nn, optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

rng = np.random.default_rng(0)

# --------------------------------------------------------------------------------------------------
section("1. Module and Parameter: how a model finds its weights")
# --------------------------------------------------------------------------------------------------
# A Parameter is a Tensor that requires grad and that a Module lists. A Module subclass assigns its layers
# and parameters as attributes in __init__ and says in forward what to compute. Nothing else is declared.


class TwoLayerNet(nn.Module):
    """2 inputs -> `hidden` units with tanh -> 2 class scores, and a learned temperature on the scores."""

    def __init__(self, hidden):
        super().__init__()
        self.hidden = nn.Linear(2, hidden)
        self.out = nn.Linear(hidden, 2)
        self.log_temperature = nn.Parameter(np.zeros(1))
        self.note = ag.tensor(np.ones(1))  # a plain Tensor: not a parameter, not learned, not saved

    def forward(self, x):
        return self.out(self.hidden(x).tanh()) * self.log_temperature.exp()


ag.manual_seed(0)
net = TwoLayerNet(16)
print(net)
for name, parameter in net.named_parameters():
    print(f"    {name:18s} {str(parameter.shape):10s} requires_grad={parameter.requires_grad}")
print(f"{net.num_parameters()} numbers in all; `note` is not among them")
# How: Module.__setattr__ looks at every value assigned to the module and files it in one of three ordered
# tables. named_parameters then walks the submodules depth first, joining names with dots. These are the
# engine's own lines:
print(inspect.getsource(nn.Module.__setattr__))
print(inspect.getsource(nn.Module.named_parameters))
# Because the tables keep the order of assignment, the names and their order are fixed: that is what makes
# a state dict (name -> array) portable. Lesson 9 loads the official checkpoints by exactly these names.
state = net.state_dict()
print("state_dict:", {name: value.shape for name, value in state.items()})
other = TwoLayerNet(16)  # a different random start
other.load_state_dict(state)
probe = ag.tensor(rng.standard_normal((3, 2)))
difference = np.abs((net(probe) - other(probe)).numpy()).max()
print(f"after load_state_dict the two nets agree: largest difference {difference:.1e}")
try:
    TwoLayerNet(8).load_state_dict(state)
except KeyError as error:  # KeyError's str() quotes its message: its args hold the lines
    print("a net of another width refuses the same state dict, and loads nothing:")
    print("   ", error.args[0].splitlines()[1].strip()[:100], "...")

# --------------------------------------------------------------------------------------------------
section("2. The optimisers in a few lines of NumPy")
# --------------------------------------------------------------------------------------------------
# Every optimiser reads the gradients g that backward left in each parameter and changes the parameter in
# place. What it keeps between steps is its state. The four below follow PyTorch's definitions, which
# autograd.optim follows too (see autograd/optim/sgd.py and adamw.py for their docstrings):
#   SGD:       p <- p - lr g
#   momentum:  b <- mu b + g  (b = g at the first step);          p <- p - lr b
#   Adam:      m <- beta1 m + (1 - beta1) g;   v <- beta2 v + (1 - beta2) g^2    (moments of g)
#              p <- p - lr * mhat / (sqrt(vhat) + eps),  mhat = m / (1 - beta1^t),  vhat = v / (1 - beta2^t)
#   AdamW:     p <- p - lr wd p  first (decoupled weight decay: lr * wd, as PyTorch), then Adam's step.
# The division by 1 - beta^t corrects the moments for starting at zero. Adam with weight decay added to the
# gradient (g + wd p, "L2") would see the decay scaled down by sqrt(vhat) for weights with large gradients;
# AdamW decays every weight by the same factor, apart from the gradient's step.


def sgd_step(params, grads, state, lr):
    for p, g in zip(params, grads, strict=True):
        p -= lr * g


def momentum_step(params, grads, state, lr, momentum=0.9):
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        state[i] = g.copy() if i not in state else momentum * state[i] + g
        p -= lr * state[i]


def adamw_step(params, grads, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    beta1, beta2 = betas
    state["t"] = t = state.get("t", 0) + 1
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = state.get(i, (np.zeros_like(p), np.zeros_like(p)))
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        state[i] = (m, v)
        p *= 1 - lr * weight_decay
        p -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def adam_step(params, grads, state, lr, betas=(0.9, 0.999), eps=1e-8):
    adamw_step(params, grads, state, lr, betas, eps, weight_decay=0.0)


# (name, our step with its hyper-parameters, the engine's optimiser with the same ones). The engine has no
# separate Adam: AdamW with weight_decay=0 is Adam.
OPTIMISERS = [
    ("SGD", lambda *a: sgd_step(*a, lr=0.5), lambda ps: optim.SGD(ps, lr=0.5)),
    (
        "momentum",
        lambda *a: momentum_step(*a, lr=0.1, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    ),
    ("Adam", lambda *a: adam_step(*a, lr=0.02), lambda ps: optim.AdamW(ps, lr=0.02, weight_decay=0.0)),
    (
        "AdamW",
        lambda *a: adamw_step(*a, lr=0.02, weight_decay=0.1),
        lambda ps: optim.AdamW(ps, lr=0.02, weight_decay=0.1),
    ),
]


# A small problem: two interleaved half-moons in the plane, two classes, labels from the points.
def two_moons(n):
    angle = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.stack([np.cos(angle) - label, (1 - 2 * label) * np.sin(angle) + 0.4 * label], axis=1)
    return (x + 0.12 * rng.standard_normal((n, 2))).astype(np.float64), label


points, labels = two_moons(200 if args.quick else 1000)


def loss_and_grads(model, x, y):
    """Cross-entropy of the model on (x, y), and every parameter's gradient as a NumPy array."""
    model.zero_grad()
    loss = F.cross_entropy(model(ag.tensor(x)), y)
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in model.parameters()]


# Step by step against autograd.optim: two copies of one network, the same gradients each step; ours
# updates arrays, the engine's optimiser updates the other copy's Parameters. In float64, so that the only
# differences left are the order of the operations (the engine fuses AdamW's update into one kernel).
print("our NumPy step against autograd.optim on the same float64 network, 5 steps each:")
for name, our_step, engine_optimiser in OPTIMISERS:
    ag.manual_seed(1)
    ours, theirs = TwoLayerNet(8).to(dtype=np.float64), TwoLayerNet(8).to(dtype=np.float64)
    theirs.load_state_dict(ours.state_dict())
    optimiser, state, largest = engine_optimiser(theirs.parameters()), {}, 0.0
    for _ in range(5):
        _, grads = loss_and_grads(ours, points, labels)
        our_step([p.data for p in ours.parameters()], grads, state)
        loss_and_grads(theirs, points, labels)
        optimiser.step()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            largest = max(largest, float(np.abs(a.numpy() - b.numpy()).max()))
    print(f"    {name:9s} largest difference of any weight over the 5 steps: {largest:.1e}")

# --------------------------------------------------------------------------------------------------
section("3. Each optimiser trained on the same problem")
# --------------------------------------------------------------------------------------------------
# Full-batch training of one start (the same seed) with each of our four steps. The learning rates are
# ordinary choices for each method, not tuned; SGD needs a larger one than Adam, whose step is about lr per
# weight whatever the gradient's scale.
steps = 150 if args.quick else 600
histories = {}
for name, our_step, _ in OPTIMISERS:
    ag.manual_seed(2)
    model, state, history = TwoLayerNet(16), {}, []
    for _ in range(steps):
        loss, grads = loss_and_grads(model, points, labels)
        our_step([p.data for p in model.parameters()], grads, state)
        history.append(loss)
    with ag.no_grad():
        accuracy = float((model(ag.tensor(points)).numpy().argmax(axis=1) == labels).mean())
    histories[name] = history
    print(
        f"    {name:9s} loss {history[0]:.3f} -> {history[-1]:.3f} after {steps} steps, "
        f"training accuracy {accuracy:.1%}"
    )

fig, ax = plt.subplots(figsize=(7, 4))
for name, history in histories.items():
    ax.plot(history, label=name)
ax.set(
    xlabel="step (full batch)",
    ylabel="cross-entropy",
    yscale="log",
    title=f"two moons, {len(labels)} points, one start",
)
ax.grid(alpha=0.3)
ax.legend()
save_figure(fig, "optimisers.png")

# --------------------------------------------------------------------------------------------------
section("4. The loop")
# --------------------------------------------------------------------------------------------------
# Everything together, with the engine's optimiser: shuffle, cut into mini-batches, and for each batch
# forward, loss, zero_grad, backward, step. After each epoch, measure on points the loop never trained on.
# Lesson 11's trainer (tinyconvnext.engine.train_one_epoch) is this loop with the recipe around it: a
# learning rate set from a schedule before each step, gradient clipping, an average of the weights.
test_points, test_labels = two_moons(500)
ag.manual_seed(3)
model = TwoLayerNet(16)
optimizer = optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
batch_size = 32
for epoch in range(5 if args.quick else 20):
    order = rng.permutation(len(labels))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        loss = F.cross_entropy(model(ag.tensor(points[batch])), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with ag.no_grad():
        test_accuracy = float((model(ag.tensor(test_points)).numpy().argmax(axis=1) == test_labels).mean())
    print(
        f"    epoch {epoch + 1:2d}: last batch loss {loss.item():.3f}, "
        f"accuracy on 500 new points {test_accuracy:.1%}"
    )

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. In TwoLayerNet, store the two layers in a Python list (self.layers = [nn.Linear(...), ...]) instead of
#    two attributes. Predict what named_parameters lists and what the optimisers then train; run and see
#    (nn.ModuleList is the fix).
# 2. Give SGD the Adam learning rate (0.02) in OPTIMISERS. Predict where its curve in optimisers.png ends
#    against Adam's after the same steps.
# 3. Set AdamW's weight_decay to 1.0. Predict what happens to the loss curve and to the size of the weights
#    (print np.abs(p.numpy()).mean() for each parameter); then compare with Adam's.
