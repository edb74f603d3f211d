"""Reverse-mode differentiation over the recorded graph.

``backward(root)`` visits the ops that made ``root`` in reverse topological order, so an op's output
gradient is complete (summed over every use of that output) before its ``backward`` runs. The order is
found with an explicit stack, not recursion: a chain of ten thousand ops is fine.
"""

from __future__ import annotations

from .backend import device_of, get_array_module


def sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded, so that it has ``shape``.

    Broadcasting copies a value along new leading axes and along axes of size 1; the gradient of a
    copied value is the sum of the gradients of its copies.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"cannot sum a gradient of shape {grad.shape} to the larger shape {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape, strict=False)) if s == 1 and g != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"gradient of shape {grad.shape} does not match its input's shape {shape}")
    return grad


def topological_order(root):
    """Tensors reachable from ``root`` through recorded ops, each listed before the tensors it came from."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        ctx = tensor._ctx
        if ctx is not None and not ctx.freed:
            for parent in ctx.inputs:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()  # post-order reversed: every tensor before its inputs
    return order


def _initial_gradient(root, grad):
    """d(root)/d(root): ones for a scalar root, else the given ``grad``, checked and in the root's dtype."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the ops that made it has "
            "requires_grad=True (or it was computed under no_grad)"
        )
    if grad is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a scalar output, got shape {tuple(root.shape)}; "
                "pass grad= with that shape (e.g. loss.sum().backward() or y.backward(autograd.ones_like(y)))"
            )
        return get_array_module(root.data).ones(root.shape, dtype=root.dtype)
    grad = grad.data if isinstance(grad, type(root)) else grad  # a Tensor, or an array
    if device_of(grad) != device_of(root.data):
        raise ValueError(
            f"backward(grad=...): grad is on {device_of(grad)} but the output on "
            f"{device_of(root.data)}; move it with .to({device_of(root.data)!r}) first"
        )
    if tuple(grad.shape) != tuple(root.shape):
        raise ValueError(
            f"backward(grad=...): grad has shape {tuple(grad.shape)}, expected {tuple(root.shape)}"
        )
    return grad.astype(root.dtype, copy=False)


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    grad = _initial_gradient(root, grad)

    if root._ctx is not None and root._ctx.freed:
        raise RuntimeError(_FREED_MESSAGE)

    grads = {id(root): grad}
    for tensor in topological_order(root):
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        ctx = tensor._ctx
        if ctx is None or tensor._retains_grad:
            _accumulate_into_grad(tensor, g)
        if ctx is None:
            continue
        if ctx.freed:
            raise RuntimeError(_FREED_MESSAGE)
        input_grads = ctx.backward(g) if ctx.kernels is None else ctx.fast_backward(g)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(ctx.inputs):
            raise RuntimeError(
                f"{type(ctx).__name__}.backward returned {len(input_grads)} gradients for "
                f"{len(ctx.inputs)} inputs"
            )
        for parent, parent_grad, needed in zip(ctx.inputs, input_grads, ctx.needs_input_grad, strict=False):
            if not needed or parent_grad is None:
                continue
            parent_grad = sum_to_shape(parent_grad, parent.shape)
            if parent_grad.dtype != parent.dtype:
                parent_grad = parent_grad.astype(parent.dtype)
            key = id(parent)
            grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
        if not retain_graph:
            ctx.release()


def _accumulate_into_grad(tensor, g) -> None:
    if tensor.grad is None:
        # A copy: the same gradient array may reach several leaves (e.g. through an Add).
        tensor.grad = type(tensor)(g.copy())
    else:
        tensor.grad = type(tensor)(tensor.grad.data + g)


_FREED_MESSAGE = (
    "Trying to backward through the graph a second time: its saved arrays were freed after the first "
    "backward. Pass retain_graph=True to the first backward() if you need to call it again."
)
