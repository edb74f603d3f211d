"""Float32 parity with PyTorch: forward values and gradients of every engine op PyTorch also has. Our ops
run on every device (the "cuda" runs are skipped without CuPy and a GPU); the results are compared on
the CPU against PyTorch's."""

import numpy as np
import pytest
import torch

import autograd as ag

RNG = np.random.default_rng(0)


def _pos(shape):
    return RNG.uniform(0.3, 2.0, size=shape).astype(np.float32)


def _any(shape):
    return RNG.uniform(-2.0, 2.0, size=shape).astype(np.float32)


def _apart(shape):
    return (RNG.choice([-1.0, 1.0], size=shape) * RNG.uniform(0.1, 2.0, size=shape)).astype(np.float32)


# name, our function, torch function, input makers (each called with a shape), shapes
CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [_any, _any], [(3, 1, 5), (4, 5)]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [_any, _any], [(3, 4), (4,)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [_any, _any], [(2, 3, 4), (3, 1)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [_any, _pos], [(3, 4), (3, 4)]),
    ("pow", lambda a, b: a**b, lambda a, b: a**b, [_pos, _any], [(3, 4), (4,)]),
    ("pow_scalar", lambda a: a**3, lambda a: a**3, [_any], [(5, 6)]),
    ("neg", lambda a: -a, lambda a: -a, [_any], [(7,)]),
    ("exp", ag.exp, torch.exp, [_any], [(3, 4)]),
    ("log", ag.log, torch.log, [_pos], [(3, 4)]),
    ("sqrt", ag.sqrt, torch.sqrt, [_pos], [(3, 4)]),
    ("tanh", ag.tanh, torch.tanh, [_any], [(3, 4)]),
    ("sigmoid", ag.sigmoid, torch.sigmoid, [_any], [(3, 4)]),
    ("relu", ag.relu, torch.relu, [_apart], [(3, 4)]),
    ("abs", ag.abs, torch.abs, [_apart], [(3, 4)]),
    ("clip", lambda a: ag.clip(a, -0.5, 0.7), lambda a: torch.clamp(a, -0.5, 0.7), [_any], [(6, 7)]),
    ("maximum", ag.maximum, torch.maximum, [_any, _any], [(3, 4), (4,)]),
    ("minimum", ag.minimum, torch.minimum, [_any, _any], [(3, 4), (3, 1)]),
    ("maximum_ties", ag.maximum, torch.maximum, [lambda s: np.ones(s, np.float32)] * 2, [(3,), (3,)]),
    (
        "where",
        lambda a, b: ag.where(a > 0, a, b),
        lambda a, b: torch.where(a > 0, a, b),
        [_any, _any],
        [(3, 4), (4,)],
    ),
    ("matmul", lambda a, b: a @ b, lambda a, b: a @ b, [_any, _any], [(2, 1, 3, 4), (5, 4, 6)]),
    ("matmul_vec", lambda a, b: a @ b, lambda a, b: a @ b, [_any, _any], [(4,), (2, 4, 3)]),
    (
        "sum",
        lambda a: a.sum(axis=(0, 2), keepdims=True),
        lambda a: a.sum(dim=(0, 2), keepdim=True),
        [_any],
        [(3, 4, 5)],
    ),
    ("mean", lambda a: a.mean(axis=1), lambda a: a.mean(dim=1), [_any], [(3, 4, 5)]),
    ("max", lambda a: a.max(axis=-1), lambda a: a.amax(dim=-1), [_any], [(3, 4, 5)]),
    ("max_ties", lambda a: a.max(), lambda a: a.amax(), [lambda s: np.ones(s, np.float32)], [(2, 3)]),
    ("min", lambda a: a.min(axis=0), lambda a: a.amin(dim=0), [_any], [(3, 4, 5)]),
    ("var", lambda a: a.var(axis=1), lambda a: a.var(dim=1), [_any], [(3, 4, 5)]),
    (
        "var_population",
        lambda a: a.var(axis=(0, 1), correction=0),
        lambda a: a.var(dim=(0, 1), correction=0),
        [_any],
        [(3, 4, 5)],
    ),
    ("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [_any], [(2, 3, 4)]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [_any], [(2, 3, 4)]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [_any], [(2, 3, 4)]),
    ("expand", lambda a: a.expand(2, 3, 4), lambda a: a.expand(2, 3, 4), [_any], [(3, 1)]),
    ("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [_any], [(3, 1, 4)]),
    ("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [_any], [(3, 4)]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [_any], [(2, 3, 4)]),
    (
        "concatenate",
        lambda a, b: ag.concatenate([a, b], axis=1),
        lambda a, b: torch.cat([a, b], dim=1),
        [_any, _any],
        [(2, 3), (2, 5)],
    ),
    (
        "stack",
        lambda a, b: ag.stack([a, b], axis=1),
        lambda a, b: torch.stack([a, b], dim=1),
        [_any, _any],
        [(2, 3), (2, 3)],
    ),
    (
        "pad",
        lambda a: ag.pad(a, ((0, 0), (1, 2), (3, 0)), value=0.5),
        lambda a: torch.nn.functional.pad(a, (3, 0, 1, 2), value=0.5),
        [_any],
        [(2, 3, 4)],
    ),
    ("getitem_basic", lambda a: a[1:, None, ..., ::2], lambda a: a[1:, None, ..., ::2], [_any], [(3, 4, 5)]),
    (
        "getitem_int_array",
        lambda a: a[np.array([0, 2, 0])],
        lambda a: a[torch.tensor([0, 2, 0])],
        [_any],
        [(3, 4)],
    ),
    ("getitem_mask", lambda a: a[a > 0], lambda a: a[a > 0], [_any], [(3, 4)]),
    ("softmax", lambda a: a.softmax(axis=1), lambda a: a.softmax(dim=1), [_any], [(3, 4, 5)]),
    ("log_softmax", lambda a: a.log_softmax(axis=-1), lambda a: a.log_softmax(dim=-1), [_any], [(3, 4, 5)]),
    ("logsumexp", lambda a: a.logsumexp(axis=(1, 2)), lambda a: a.logsumexp(dim=(1, 2)), [_any], [(3, 4, 5)]),
    ("cast_to_float64", lambda a: a.double() * 2, lambda a: a.double() * 2, [_any], [(3, 4)]),
]


@pytest.mark.parametrize("name, ours, theirs, makers, shapes", CASES, ids=[c[0] for c in CASES])
def test_forward_and_gradients_match_pytorch(name, ours, theirs, makers, shapes, device):
    arrays = [make(shape) for make, shape in zip(makers, shapes, strict=False)]
    our_inputs = [ag.tensor(a, device=device, requires_grad=True) for a in arrays]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_out, torch_out = ours(*our_inputs), theirs(*torch_inputs)
    assert our_out.device == device
    assert our_out.shape == tuple(torch_out.shape)
    np.testing.assert_allclose(our_out.numpy(), torch_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    upstream = RNG.standard_normal(our_out.shape).astype(our_out.dtype)
    our_out.backward(ag.tensor(upstream, device=device))
    torch_out.backward(torch.tensor(upstream))
    for ours_in, torch_in in zip(our_inputs, torch_inputs, strict=False):
        assert ours_in.grad.dtype == np.float32 and ours_in.grad.device == device
        np.testing.assert_allclose(ours_in.grad.numpy(), torch_in.grad.numpy(), rtol=1e-5, atol=1e-5)
