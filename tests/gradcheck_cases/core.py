"""Cases for the engine's core ops (autograd.ops)."""

import numpy as np
from hypothesis import strategies as st
from strategies import broadcastable_shapes, distinct_values, rng_from, shapes, values, values_away_from_zero

import autograd as ag
from autograd.ops import elementwise as E
from autograd.ops import matmul as M
from autograd.ops import reduction as R
from autograd.ops import shape as S
from autograd.ops import softmax as SM
from gradcheck_cases import case, constant, leaf


def _binary(draw, device, op, x_values=values, y_values=values):
    sa, sb = draw(broadcastable_shapes())
    rng = rng_from(draw)
    return op, [leaf(x_values(rng, sa), device), leaf(y_values(rng, sb), device)]


@case(E.Add)
def add_case(draw, device):
    return _binary(draw, device, lambda x, y: x + y)


@case(E.Sub)
def sub_case(draw, device):
    return _binary(draw, device, lambda x, y: x - y)


@case(E.Mul)
def mul_case(draw, device):
    return _binary(draw, device, lambda x, y: x * y)


@case(E.Div)
def div_case(draw, device):
    return _binary(
        draw, device, lambda x, y: x / y, y_values=lambda r, s: values_away_from_zero(r, s, gap=0.5)
    )


@case(E.Pow)
def pow_case(draw, device):
    return _binary(draw, device, lambda x, y: x**y, x_values=lambda r, s: values(r, s, 0.5, 2.0))


@case(E.Pow)
def pow_scalar_exponent_case(draw, device):
    rng = rng_from(draw)
    exponent = draw(st.sampled_from([2, 3, 0.5, -1.5]))
    return (lambda x: x**exponent), [leaf(values(rng, draw(shapes()), 0.5, 2.0), device)]


@case(E.Pow)
def rpow_case(draw, device):
    rng = rng_from(draw)
    return (lambda x: 2.0**x), [leaf(values(rng, draw(shapes())), device)]


def _unary(draw, device, op, make=values):
    rng = rng_from(draw)
    return op, [leaf(make(rng, draw(shapes())), device)]


@case(E.Neg)
def neg_case(draw, device):
    return _unary(draw, device, lambda x: -x)


@case(E.Exp)
def exp_case(draw, device):
    return _unary(draw, device, ag.exp)


@case(E.Log)
def log_case(draw, device):
    return _unary(draw, device, ag.log, lambda r, s: values(r, s, 0.2, 3.0))


@case(E.Sqrt)
def sqrt_case(draw, device):
    return _unary(draw, device, ag.sqrt, lambda r, s: values(r, s, 0.2, 3.0))


@case(E.Tanh)
def tanh_case(draw, device):
    return _unary(draw, device, ag.tanh)


@case(E.Sigmoid)
def sigmoid_case(draw, device):
    return _unary(draw, device, ag.sigmoid, lambda r, s: values(r, s, -6, 6))


@case(E.ReLU)
def relu_case(draw, device):
    return _unary(draw, device, ag.relu, values_away_from_zero)


@case(E.Abs)
def abs_case(draw, device):
    return _unary(draw, device, ag.abs, values_away_from_zero)


@case(E.Clip)
def clip_case(draw, device):
    # Bounds at +-0.5, values kept 0.05 away from them.
    def away_from_bounds(rng, shape):
        v = values(rng, shape, -1.5, 1.5)
        return np.where(np.abs(np.abs(v) - 0.5) < 0.05, v + 0.1, v)

    low, high = draw(st.sampled_from([(-0.5, 0.5), (None, 0.5), (-0.5, None)]))
    return _unary(draw, device, lambda x: ag.clip(x, low, high), away_from_bounds)


def _apart_pair(draw, device):
    """Two broadcastable arrays whose values differ by at least 0.6 everywhere (no ties, no kinks)."""
    sa, sb = draw(broadcastable_shapes())
    rng = rng_from(draw)
    x = rng.uniform(0.0, 1.0, size=sa)
    y = rng.choice([-1.0, 2.0], size=sb) + rng.uniform(-0.4, 0.4, size=sb)
    return [leaf(x, device), leaf(y, device)]


@case(E.Maximum)
def maximum_case(draw, device):
    return ag.maximum, _apart_pair(draw, device)


@case(E.Minimum)
def minimum_case(draw, device):
    return ag.minimum, _apart_pair(draw, device)


@case(E.Where)
def where_case(draw, device):
    sa, sb = draw(broadcastable_shapes())
    rng = rng_from(draw)
    condition = constant(rng.random(np.broadcast_shapes(sa, sb)) > 0.5, device)
    return (lambda x, y: ag.where(condition, x, y)), [
        leaf(values(rng, sa), device),
        leaf(values(rng, sb), device),
    ]


@case(E.Cast)
def cast_case(draw, device):
    # A float32 round trip would drown finite differences in rounding; the float32 direction is
    # covered by the parity tests.
    return _unary(draw, device, lambda x: ag.ops.elementwise.Cast.apply(x, dtype=np.dtype(np.float64)) * 2.0)


@case(E.ToDevice)
def to_device_case(draw, device):
    return _unary(draw, device, lambda x: ag.ops.elementwise.ToDevice.apply(x, device="cpu") * 3.0)


@case(M.MatMul)
def matmul_case(draw, device):
    rng = rng_from(draw)
    kind = draw(st.sampled_from(["2d", "batched", "broadcast", "vec-mat", "mat-vec", "vec-vec"]))
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    b1, b2 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    a_shape, b_shape = {
        "2d": ((m, k), (k, n)),
        "batched": ((b1, m, k), (b1, k, n)),
        "broadcast": ((b1, 1, m, k), (b2, k, n)),
        "vec-mat": ((k,), (b1, k, n)),
        "mat-vec": ((b1, m, k), (k,)),
        "vec-vec": ((k,), (k,)),
    }[kind]
    return (lambda a, b: a @ b), [leaf(values(rng, a_shape), device), leaf(values(rng, b_shape), device)]


def _axis_and_keepdims(draw, ndim):
    if ndim == 0 or draw(st.booleans()):
        axis = None
    else:
        chosen = draw(
            st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda a: a % ndim)
        )
        axis = chosen[0] if len(chosen) == 1 else tuple(chosen)
    return axis, draw(st.booleans())


def _reduction(draw, device, op, make=values):
    rng = rng_from(draw)
    shape = draw(shapes())
    axis, keepdims = _axis_and_keepdims(draw, len(shape))
    return (lambda x: op(x, axis=axis, keepdims=keepdims)), [leaf(make(rng, shape), device)]


@case(R.Sum)
def sum_case(draw, device):
    return _reduction(draw, device, ag.sum)


@case(R.Mean)
def mean_case(draw, device):
    return _reduction(draw, device, ag.mean)


@case(R.Max)
def max_case(draw, device):
    return _reduction(draw, device, ag.max, distinct_values)


@case(R.Min)
def min_case(draw, device):
    return _reduction(draw, device, ag.min, distinct_values)


@case(R.Var)
def var_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1, min_side=2))
    axis, keepdims = _axis_and_keepdims(draw, len(shape))
    correction = draw(st.sampled_from([0, 1]))
    return (
        (lambda x: ag.var(x, axis=axis, keepdims=keepdims, correction=correction)),
        [leaf(values(rng, shape), device)],
    )


@case(S.Reshape)
def reshape_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes())
    return (lambda x: x.reshape(-1) * 1.5), [leaf(values(rng, shape), device)]


@case(S.Permute)
def permute_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    axes = tuple(draw(st.permutations(range(len(shape)))))
    weight = constant(np.arange(1, int(np.prod(shape)) + 1).reshape(tuple(shape[a] for a in axes)), device)
    return (lambda x: x.permute(axes) * weight), [leaf(values(rng, shape), device)]


@case(S.BroadcastTo)
def broadcast_to_case(draw, device):
    small, big = sorted(draw(broadcastable_shapes()), key=len)
    big = np.broadcast_shapes(small, big)
    rng = rng_from(draw)
    weight = constant(rng.standard_normal(big), device)
    return (lambda x: ag.broadcast_to(x, big) * weight), [leaf(values(rng, small), device)]


@case(S.Concatenate)
def concatenate_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 3)))]
    arrays = []
    for n in sizes:
        s = list(shape)
        s[axis] = n
        arrays.append(leaf(values(rng, tuple(s)), device))
    return (lambda *xs: ag.concatenate(xs, axis=axis) ** 2), arrays


@case(S.Stack)
def stack_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes())
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [leaf(values(rng, shape), device) for _ in range(draw(st.integers(1, 3)))]
    return (lambda *xs: ag.stack(xs, axis=axis) ** 2), arrays


@case(S.Pad)
def pad_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    value = draw(st.sampled_from([0.0, 1.5]))
    return (lambda x: ag.pad(x, widths, value=value) ** 2), [leaf(values(rng, shape), device)]


@case(S.GetItem)
def getitem_case(draw, device):
    rng = rng_from(draw)
    kind = draw(st.sampled_from(["slice", "int", "none-ellipsis", "int-array-repeats", "bool-mask", "mixed"]))
    shape = (draw(st.integers(2, 5)), draw(st.integers(2, 5)), draw(st.integers(1, 4)))
    index = {
        "slice": (slice(1, None), slice(None, None, 2)),
        "int": (1, -1),
        "none-ellipsis": (None, Ellipsis, slice(0, 1)),
        "int-array-repeats": (np.array([0, 1, 0, 1]),),  # element picked twice: gradients add up
        "bool-mask": (rng.random(shape) > 0.3,),
        "mixed": (slice(None), np.array([1, 0, 1]) % shape[1], 0),
    }[kind]
    return (lambda x: x[index] ** 2), [leaf(values(rng, shape), device)]


@case(SM.Softmax)
def softmax_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    weight = constant(rng.standard_normal(shape), device)
    return (lambda x: ag.softmax(x, axis=axis) * weight), [leaf(values(rng, shape, -5, 5), device)]


@case(SM.LogSoftmax)
def log_softmax_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return (lambda x: ag.log_softmax(x, axis=axis)), [leaf(values(rng, shape, -5, 5), device)]


@case(SM.LogSumExp)
def logsumexp_case(draw, device):
    return _reduction(draw, device, ag.logsumexp, lambda r, s: values(r, s, -5, 5))
