"""Cases for the ops of ``autograd.nn.functional``."""

import numpy as np
from hypothesis import strategies as st
from strategies import distinct_values, rng_from, shapes, values

import autograd as ag
from autograd.nn import functional as F
from autograd.nn.functional import (
    activation,
    conv,
    fully_connected,
    loss,
    norm,
    pooling,
    regularization,
    residual,
)
from gradcheck_cases import case, constant, leaf


def _maybe_bias(draw, device, rng, channels):
    return [leaf(values(rng, (channels,)), device)] if draw(st.booleans()) else []


@case(conv.Conv2dIm2col)
def conv2d_im2col_case(draw, device):
    rng = rng_from(draw)
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c, o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 6))
    inputs = [
        leaf(values(rng, (draw(st.integers(1, 2)), c, h, w)), device),
        leaf(values(rng, (o, c // groups, kh, kw)), device),
    ]
    inputs += _maybe_bias(draw, device, rng, o)
    return (
        lambda x, wt, *b: conv.conv2d_im2col(x, wt, *b, stride=stride, padding=padding, groups=groups)
    ), inputs


@case(conv.PatchifyConv2d)
def patchify_case(draw, device):
    rng = rng_from(draw)
    k = draw(st.integers(1, 3))
    c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))  # sizes that are not multiples of k too
    inputs = [
        leaf(values(rng, (draw(st.integers(1, 2)), c, h, w)), device),
        leaf(values(rng, (o, c, k, k)), device),
    ]
    inputs += _maybe_bias(draw, device, rng, o)
    return (lambda x, wt, *b: F.conv2d(x, wt, *b, stride=k)), inputs


@case(conv.DepthwiseConv2d)
def depthwise_case(draw, device):
    rng = rng_from(draw)
    c = draw(st.integers(1, 4))
    k = draw(st.sampled_from([1, 2, 3, 5, 7]))
    padding = draw(st.integers(0, k // 2 + 1))
    stride = draw(st.integers(1, 2))
    h, w = draw(st.integers(max(1, k - 2 * padding), 8)), draw(st.integers(max(1, k - 2 * padding), 8))
    inputs = [
        leaf(values(rng, (draw(st.integers(1, 2)), c, h, w)), device),
        leaf(values(rng, (c, 1, k, k)), device),
    ]
    inputs += _maybe_bias(draw, device, rng, c)
    return (lambda x, wt, *b: F.conv2d(x, wt, *b, stride=stride, padding=padding, groups=c)), inputs


@case(fully_connected.Linear)
def linear_case(draw, device):
    rng = rng_from(draw)
    lead = draw(shapes(0, 2, 1, 3))
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    inputs = [leaf(values(rng, lead + (n_in,)), device), leaf(values(rng, (n_out, n_in)), device)]
    inputs += _maybe_bias(draw, device, rng, n_out)
    return F.linear, inputs


@case(fully_connected.LinearGELU)
def linear_gelu_case(draw, device):
    rng = rng_from(draw)
    lead = draw(shapes(0, 2, 1, 3))
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    approximate = draw(st.sampled_from(["none", "tanh"]))
    inputs = [
        leaf(values(rng, lead + (n_in,), -2, 2), device),
        leaf(values(rng, (n_out, n_in)), device),
        leaf(values(rng, (n_out,)), device),
    ]
    return (lambda x, w, b: F.linear_gelu(x, w, b, approximate)), inputs


@case(norm.LayerNorm)
def layer_norm_case(draw, device):
    rng = rng_from(draw)
    shape = draw(shapes(1, 4, 1, 5))
    k = draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k :]
    if int(np.prod(normalized)) < 2:
        shape, normalized = shape[:-1] + (3,), normalized[:-1] + (3,)
    affine = [leaf(values(rng, normalized), device) for _ in range(2)] if draw(st.booleans()) else []
    weight = constant(
        rng.standard_normal(shape), device
    )  # an output weighting: sum(y) alone has zero gradient
    return (
        (lambda x, *wb: F.layer_norm(x, normalized, *wb, eps=1e-5) * weight),
        [leaf(values(rng, shape), device)] + affine,
    )


@case(norm.LayerNorm)
def layer_norm_channels_first_case(draw, device):
    rng = rng_from(draw)
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(2, 5)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )
    affine = [leaf(values(rng, shape[1:2]), device) for _ in range(2)] if draw(st.booleans()) else []
    weight = constant(rng.standard_normal(shape), device)
    return (
        (lambda x, *wb: F.layer_norm_channels_first(x, *wb, eps=1e-6) * weight),
        [leaf(values(rng, shape), device)] + affine,
    )


@case(activation.GELU)
def gelu_case(draw, device):
    rng = rng_from(draw)
    approximate = draw(st.sampled_from(["none", "tanh"]))
    return (lambda x: F.gelu(x, approximate=approximate)), [leaf(values(rng, draw(shapes()), -4, 4), device)]


@case(regularization.ScaleByMask)
def dropout_case(draw, device):
    rng = rng_from(draw)
    seed, p = draw(st.integers(0, 1000)), draw(st.sampled_from([0.2, 0.5]))
    # A fresh generator with the same seed at every call: the same mask in every finite difference.
    return (
        (lambda x: F.dropout(x, p, training=True, generator=ag.Generator(seed))),
        [leaf(values(rng, draw(shapes())), device)],
    )


@case(regularization.ScaleByMask)
def drop_path_case(draw, device):
    rng = rng_from(draw)
    seed, p = draw(st.integers(0, 1000)), draw(st.sampled_from([0.1, 0.5]))
    shape = draw(shapes(1, 4))
    return (
        (lambda x: F.drop_path(x, p, training=True, generator=ag.Generator(seed))),
        [leaf(values(rng, shape), device)],
    )


@case(residual.ScaledResidual)
def residual_add_case(draw, device):
    rng = rng_from(draw)
    seed, p = draw(st.integers(0, 1000)), draw(st.sampled_from([0.0, 0.3, 0.6]))
    shape = draw(shapes(2, 4))
    inputs = [leaf(values(rng, shape), device), leaf(values(rng, shape), device)]
    if draw(st.booleans()):  # with a layer scale
        inputs.append(leaf(values(rng, shape[-1:]), device))
    # A fresh generator with the same seed at every call: the same drop-path mask in every finite difference.
    return (
        (
            lambda s, x, *gamma: F.residual_add(
                s, x, *(gamma or [None]), drop_prob=p, training=True, generator=ag.Generator(seed)
            )
        ),
        inputs,
    )


def _pool_geometry(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(k[0], 7)), draw(st.integers(k[1], 7))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), k, stride, padding


@case(pooling.AvgPool2d)
def avg_pool_case(draw, device):
    shape, k, stride, padding = _pool_geometry(draw)
    rng = rng_from(draw)
    return (lambda x: F.avg_pool2d(x, k, stride, padding)), [leaf(values(rng, shape), device)]


@case(pooling.MaxPool2d)
def max_pool_case(draw, device):
    shape, k, stride, padding = _pool_geometry(draw)
    rng = rng_from(draw)
    return (lambda x: F.max_pool2d(x, k, stride, padding)), [leaf(distinct_values(rng, shape), device)]


@case(pooling.AdaptiveAvgPool2d)
def adaptive_avg_pool_case(draw, device):
    rng = rng_from(draw)
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 7)),
        draw(st.integers(1, 7)),
    )
    size = (draw(st.integers(1, shape[2])), draw(st.integers(1, shape[3])))
    return (lambda x: F.adaptive_avg_pool2d(x, size)), [leaf(values(rng, shape), device)]


@case(norm.BatchNorm)
def batch_norm_case(draw, device):
    rng = rng_from(draw)
    shape = draw(st.sampled_from([(4, 3), (3, 2, 5), (2, 3, 2, 3)]))
    training = draw(st.booleans())
    channels_last = draw(st.booleans())  # (N, ..., C), as ConvNeXt(norm_layer="batch")
    c = shape[-1] if channels_last else shape[1]
    running_mean = ag.tensor(values(rng, (c,)), dtype=ag.float64, device=device)
    running_var = ag.tensor(values(rng, (c,), 0.5, 2), dtype=ag.float64, device=device)
    weight = constant(rng.standard_normal(shape), device)
    affine = [leaf(values(rng, (c,)), device) for _ in range(2)] if draw(st.booleans()) else []

    def fn(x, *wb):
        stats = (None, None) if training else (running_mean, running_var)
        return F.batch_norm(x, *stats, *wb, training=training, channels_last=channels_last) * weight

    return fn, [leaf(values(rng, shape), device)] + affine


@case(loss.CrossEntropy)
def cross_entropy_case(draw, device):
    rng = rng_from(draw)
    n, k = draw(st.integers(1, 5)), draw(st.integers(2, 6))
    smoothing = draw(st.sampled_from([0.0, 0.1]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if draw(st.booleans()):
        target = ag.tensor(rng.integers(0, k, size=n), device=device)
        return (lambda x: F.cross_entropy(x, target, label_smoothing=smoothing, reduction=reduction)), [
            leaf(values(rng, (n, k), -4, 4), device)
        ]
    soft = rng.random((n, k))
    soft_target = leaf(soft / soft.sum(axis=1, keepdims=True), device)  # gradient w.r.t. the soft target too
    return (lambda x, t: F.cross_entropy(x, t, label_smoothing=smoothing, reduction=reduction)), [
        leaf(values(rng, (n, k), -4, 4), device),
        soft_target,
    ]


@case(conv.DepthwiseConv2d)
def depthwise_channels_last_case(draw, device):
    rng = rng_from(draw)
    c = draw(st.integers(1, 5))
    k = draw(st.sampled_from([1, 3, 5, 7]))
    padding, stride = draw(st.integers(0, k // 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(max(1, k - 2 * padding), 8)), draw(st.integers(max(1, k - 2 * padding), 8))
    inputs = [
        leaf(values(rng, (draw(st.integers(1, 2)), h, w, c)), device),
        leaf(values(rng, (c, 1, k, k)), device),
    ]
    inputs += _maybe_bias(draw, device, rng, c)
    return (
        lambda x, wt, *b: F.depthwise_conv2d_channels_last(x, wt, *b, stride=stride, padding=padding)
    ), inputs


@case(conv.PatchifyConv2d)
def patchify_channels_last_case(draw, device):
    rng = rng_from(draw)
    k, c, o = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(k, 9)), draw(st.integers(k, 9))
    inputs = [
        leaf(values(rng, (draw(st.integers(1, 2)), h, w, c)), device),
        leaf(values(rng, (o, c, k, k)), device),
    ]
    inputs += _maybe_bias(draw, device, rng, o)
    return (lambda x, wt, *b: F.patchify_conv2d_channels_last(x, wt, *b)), inputs
