"""Depthwise conv2d kernels: every step of the chapter (dw.STEPS) and the fast path, run through the op
(``F.depthwise_conv2d_channels_last`` for NHWC, ``F.conv2d(groups=C)`` for NCHW), == the op's own body, output
and gradients; every step deterministic whatever the thread count; the public entry points == PyTorch."""

from types import SimpleNamespace

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd as ag
from autograd import kernels as kernel_switch
from autograd.kernels.cpu import depthwise_conv2d as dw
from autograd.nn import functional as F
from autograd.nn.functional.conv import DepthwiseConv2d

FAMILY = "depthwise_conv2d"
LAYOUTS = ["nhwc", "nchw"]
ENTRY_POINTS = [f"depthwise_conv2d_{layout}_{way}" for layout in LAYOUTS for way in ("forward", "backward")]

# (step name, layout) for every layout a step implements (steps 1-3: NHWC; the last step: both)
STEP_LAYOUTS = [
    (name, layout)
    for name, step in dw.STEPS.items()
    for layout in LAYOUTS
    if hasattr(step, f"depthwise_conv2d_{layout}_forward")
]
STEP_IDS = [f"{name}-{layout}" for name, layout in STEP_LAYOUTS]

geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 20),  # C (crosses the 16-lane channel blocks of the NHWC kernels)
    st.integers(1, 11),  # H
    st.integers(1, 11),  # W
    st.integers(1, 7),  # KH
    st.integers(1, 7),  # KW
    st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1)]),  # stride
    st.tuples(st.integers(0, 4), st.integers(0, 4)),  # padding, also past K - 1
)


def fits(case):
    """The kernel fits in the padded image (else the op refuses the arguments)."""
    _, _, H, W, KH, KW, _, (ph, pw) = case
    return H + 2 * ph >= KH and W + 2 * pw >= KW


def conv(layout, stride, padding):
    """The op as a function of its inputs (x, weight[, bias]), in ``layout``."""

    def fn(x, weight, bias=None):
        if layout == "nhwc":
            return F.depthwise_conv2d_channels_last(x, weight, bias, stride, padding)
        if x.shape[1] == 1 and weight.shape[2:] == stride and padding == (0, 0):  # conv2d would patchify
            return DepthwiseConv2d.apply(x, weight, bias, stride=stride, padding=padding, channels_last=False)
        return F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])

    return fn


def make(rng, layout, N, C, H, W, KH, KW, dtype, bias=True):
    """The op's inputs: x in ``layout``, weight (C, 1, KH, KW) as PyTorch's, bias (C,) (or none)."""
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    arrays = [x, rng.standard_normal((C, 1, KH, KW)).astype(dtype)]
    return arrays + [rng.standard_normal(C).astype(dtype)] if bias else arrays


def recording(kernels):
    """``kernels`` with each entry point noting its calls (name, arguments) in ``.calls``."""
    calls = []

    def noting(name, entry):
        def call(*args):
            calls.append((name, args))
            return entry(*args)

        return call

    names = [name for name in ENTRY_POINTS if hasattr(kernels, name)]
    return SimpleNamespace(calls=calls, **{name: noting(name, getattr(kernels, name)) for name in names})


def check(layout, case, dtype, seed=7, bias=True, step=None):
    """``dw.STEPS[step]`` (default: the package's public entry points) through the op == the op's body,
    output and gradients."""
    N, C, H, W, KH, KW, stride, padding = case
    arrays = make(np.random.default_rng(seed), layout, N, C, H, W, KH, KW, dtype, bias)
    fn = conv(layout, stride, padding)
    kernels = recording(dw if step is None else dw.STEPS[step])
    actual = run(fn, arrays, kernels=kernels, family=FAMILY)
    called = [name for name, _ in kernels.calls]
    assert called == [f"depthwise_conv2d_{layout}_forward", f"depthwise_conv2d_{layout}_backward"]
    assert_same(actual, run(fn, arrays, path="body"), dtype)
    return actual


def test_steps_and_public_entry_points():
    """Steps numbered in reading order, each with the NHWC entry points; the last also has NCHW's, and it
    is what the public names of the package are; the op's fast path on NumPy arrays is this package."""
    names = list(dw.STEPS)
    assert [name.split()[0] for name in names] == [str(i) for i in range(1, len(names) + 1)]
    assert all(layout == "nhwc" for name, layout in STEP_LAYOUTS if name != names[-1])
    last = dw.STEPS[names[-1]]
    for name in ENTRY_POINTS:
        assert getattr(last, name) is getattr(dw, name)
    with kernel_switch.use_reference(False):
        assert kernel_switch.kernel_for(DepthwiseConv2d, (np.zeros(3), np.zeros(3))) is dw


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geom=geometry, seed=st.integers(0, 2**31 - 1), bias=st.booleans())
def test_public_entry_points_match_the_op_body(layout, dtype, geom, seed, bias):
    assume(fits(geom))
    check(layout, geom, dtype, seed, bias)


@pytest.mark.parametrize("step_layout", STEP_LAYOUTS, ids=STEP_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geom=geometry, seed=st.integers(0, 2**31 - 1), bias=st.booleans())
def test_every_step_matches_the_op_body(step_layout, dtype, geom, seed, bias):
    """Each step of the chapter, forward and backward, equals the op's body on any geometry."""
    assume(fits(geom))
    name, layout = step_layout
    check(layout, geom, dtype, seed, bias, step=name)


@pytest.mark.parametrize("step_layout", STEP_LAYOUTS, ids=STEP_IDS)
def test_every_step_odd_cases(step_layout):
    """ConvNeXt's 7x7 'same' over several row blocks, C past 16, stride 2, padding > K-1."""
    name, layout = step_layout
    for case in [
        (2, 33, 7, 7, 7, 7, (1, 1), (3, 3)),
        (1, 17, 21, 6, 7, 7, (1, 1), (2, 3)),
        (2, 20, 12, 9, 7, 7, (2, 2), (3, 3)),
        (1, 2, 5, 5, 3, 3, (1, 1), (4, 4)),
        (2, 4, 10, 11, 5, 4, (2, 1), (2, 1)),
        (1, 3, 6, 7, 7, 1, (1, 2), (1, 2)),  # sw > 1, pw > KW: reads up to the end of a wide-row buffer
    ]:
        check(layout, case, np.float64, step=name)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "case",
    [
        (2, 3, 9, 8, 7, 7, (1, 1), (3, 3)),  # ConvNeXt 7x7 'same', odd sizes
        (2, 33, 7, 7, 7, 7, (1, 1), (3, 3)),  # 7x7 images, C not a multiple of 16
        (1, 16, 16, 16, 7, 7, (1, 1), (3, 3)),
        (2, 5, 12, 10, 3, 3, (1, 1), (1, 1)),
        (2, 4, 10, 11, 5, 4, (2, 2), (2, 1)),  # even kernel width, stride 2, asymmetric padding
        (1, 2, 5, 5, 3, 3, (1, 1), (4, 4)),  # padding larger than kernel - 1
        (2, 3, 8, 8, 2, 2, (1, 1), (0, 0)),
        (1, 1, 1, 1, 1, 1, (1, 1), (0, 0)),
        (2, 20, 12, 9, 7, 7, (2, 2), (3, 3)),
        (2, 3, 37, 9, 7, 7, (1, 1), (3, 3)),  # several row blocks per image, last one partial
        (1, 17, 21, 6, 7, 7, (1, 1), (2, 3)),  # N = 1: images split into row blocks
        (3, 2, 9, 10, 7, 7, (1, 1), (3, 3)),  # NCHW plane path with C < 16
    ],
)
def test_fixed_cases(layout, dtype, case):
    check(layout, case, dtype)


NON_FINITE = [np.nan, np.inf, -np.inf]
NON_FINITE_IDS = ["nan", "inf", "-inf"]
# Known divergence: these compute grad_w over whole padded rows, junk columns included (g = 0 there), and
# 0 * inf = NaN reaches taps whose windows never meet the non-finite pixel. Outputs and grad_x are right.
JUNK_COLUMN_GRAD_W = [(list(dw.STEPS)[2], "nhwc"), (list(dw.STEPS)[-1], "nchw")]


def non_finite_runs(step_layout, bad):
    """(step through the op, op's body) on an x with a few NaN or infinite pixels, 7x7 'same'."""
    name, layout = step_layout
    arrays = make(np.random.default_rng(4), layout, 2, 18, 9, 8, 7, 7, np.float64)
    for n, c, i, j in [(0, 5, 0, 0), (0, 5, 4, 3), (1, 5, 8, 7), (1, 17, 2, 6)]:  # corners, inside, C > 16
        arrays[0][(n, i, j, c) if layout == "nhwc" else (n, c, i, j)] = bad
    fn = conv(layout, (1, 1), (3, 3))
    with np.errstate(invalid="ignore"):
        return run(fn, arrays, kernels=dw.STEPS[name], family=FAMILY), run(fn, arrays, path="body")


def assert_same_non_finite(actual, expected):
    """NaN, +inf and -inf in the same places; the finite values equal to float64 rounding."""
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(actual), kind(expected))
    finite = np.isfinite(expected)
    scale = max(1.0, float(np.abs(expected[finite]).max(initial=0.0)))
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-11, atol=1e-11 * scale)


@pytest.mark.parametrize("step_layout", STEP_LAYOUTS, ids=STEP_IDS)
@pytest.mark.parametrize("bad", NON_FINITE, ids=NON_FINITE_IDS)
def test_every_step_propagates_nan_and_inf_as_the_op_body(step_layout, bad):
    """A NaN or an infinity in x reaches the same outputs as in the op's body (no fastmath 'nnan'/'ninf');
    grad_x and grad_b do not depend on x and stay finite, as the body's."""
    (out, (grad_x, _, grad_b)), (out_e, (grad_x_e, _, grad_b_e)) = non_finite_runs(step_layout, bad)
    assert not np.isfinite(out_e).all()
    for a, e in [(out, out_e), (grad_x, grad_x_e), (grad_b, grad_b_e)]:
        assert_same_non_finite(a, e)


@pytest.mark.parametrize(
    "step_layout",
    [
        pytest.param(sl, marks=pytest.mark.xfail(strict=True, reason="NaN from junk columns"))
        if sl in JUNK_COLUMN_GRAD_W
        else sl
        for sl in STEP_LAYOUTS
    ],
    ids=STEP_IDS,
)
@pytest.mark.parametrize("bad", NON_FINITE, ids=NON_FINITE_IDS)
def test_every_step_weight_gradient_with_nan_and_inf_as_the_op_body(step_layout, bad):
    """grad_w: non-finite exactly at the taps whose windows meet a non-finite pixel, as in the op's body."""
    (_, (_, grad_w, _)), (_, (_, grad_w_e, _)) = non_finite_runs(step_layout, bad)
    assert not np.isfinite(grad_w_e).all() and np.isfinite(grad_w_e).any()
    assert_same_non_finite(grad_w, grad_w_e)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_op_body_on_device_matches_the_fast_path(device, layout, dtype, bias):
    """The op's body computes with the array module of its inputs: on ``device`` it gives arrays there,
    equal to the CPU fast path's results up to rounding (sums may add in another order)."""
    arrays = make(np.random.default_rng(13), layout, 2, 5, 9, 8, 3, 5, dtype, bias)
    fn = conv(layout, (2, 1), (1, 2))
    expected = run(fn, arrays, path="fast")
    with kernel_switch.use_reference():
        inputs = [ag.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        upstream = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)  # run()'s
        out.backward(ag.tensor(upstream, device=device))
    assert out.device == device and all(t.grad.device == device for t in inputs)
    assert_same((out.numpy(), [t.grad.numpy() for t in inputs]), expected, dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_non_contiguous_inputs(layout):
    """Strided views of x, weight, bias and of the upstream gradient reach the kernels as they are."""
    N, C, H, W, K = 2, 5, 9, 7, 7
    rng = np.random.default_rng(3)
    x_shape = (N, H, 2 * W, C) if layout == "nhwc" else (N, C, H, 2 * W)
    arrays = [
        rng.standard_normal(x_shape).astype(np.float32),  # every other column
        rng.standard_normal((C, 1, K, 2 * K)).astype(np.float32),  # every other column
        rng.standard_normal(2 * C).astype(np.float32),  # every other entry
    ]

    def fn(x_wide, weight_wide, bias_wide):
        weight, bias = weight_wide[..., ::2], bias_wide[::2]
        if layout == "nhwc":  # the output seen as NCHW: its gradient comes back to the op as a view
            out = F.depthwise_conv2d_channels_last(x_wide[:, :, ::2], weight, bias, 1, 3)
            return out.permute(0, 3, 1, 2)
        return F.conv2d(x_wide[..., ::2], weight, bias, 1, 3, groups=C).permute(0, 2, 3, 1)

    kernels = recording(dw)
    actual = run(fn, arrays, kernels=kernels, family=FAMILY)
    assert_same(actual, run(fn, arrays, path="body"), np.float32)
    (forward, (x, weight, bias, *_)), (backward, (_, _, grad, *_)) = kernels.calls
    assert (forward, backward) == (
        f"depthwise_conv2d_{layout}_forward",
        f"depthwise_conv2d_{layout}_backward",
    )
    assert not (x.flags.c_contiguous or weight.flags.c_contiguous or bias.flags.c_contiguous)
    assert not grad.flags.c_contiguous


def kernel_arguments(rng, layout, N, C, H, W, K, dtype):
    """x, weight, bias in the layouts the entry points take: NCHW (C, K, K), NHWC (K, K, C)."""
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, K, K)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(1, 2, 0)), b
    return x, w, b


@pytest.mark.parametrize("step_layout", STEP_LAYOUTS, ids=STEP_IDS)
def test_deterministic(step_layout):
    """Same inputs -> bit-identical outputs, also with a different number of threads (every step)."""
    name, layout = step_layout
    step = dw.STEPS[name]
    forward = getattr(step, f"depthwise_conv2d_{layout}_forward")
    backward = getattr(step, f"depthwise_conv2d_{layout}_backward")
    rng = np.random.default_rng(5)
    x, w, b = kernel_arguments(rng, layout, 4, 24, 12, 12, 7, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    most = numba.config.NUMBA_NUM_THREADS  # every thread this process may start, then one, then every one
    old = numba.get_num_threads()
    runs = []
    try:
        for threads in (most, 1, most):
            numba.set_num_threads(threads)
            runs.append((forward(x, w, b, 1, 3),) + backward(x, w, g, 1, 3, True))
    finally:
        numba.set_num_threads(old)
    first, single, again = runs
    for a, s, c in zip(first, single, again, strict=True):
        assert np.array_equal(a, s) and np.array_equal(a, c)


def test_layouts_agree():
    rng = np.random.default_rng(11)
    x, w, b = kernel_arguments(rng, "nchw", 2, 19, 10, 9, 7, np.float64)
    g = rng.standard_normal((2, 19, 10, 9))
    out = dw.depthwise_conv2d_nchw_forward(x, w, b, 1, 3)
    outh = dw.depthwise_conv2d_nhwc_forward(x.transpose(0, 2, 3, 1), w.transpose(1, 2, 0), b, 1, 3)
    np.testing.assert_allclose(outh.transpose(0, 3, 1, 2), out, rtol=1e-12, atol=1e-12)
    gx, gw, gb = dw.depthwise_conv2d_nchw_backward(x, w, g, 1, 3, True)
    hx, hw, hb = dw.depthwise_conv2d_nhwc_backward(
        x.transpose(0, 2, 3, 1), w.transpose(1, 2, 0), g.transpose(0, 2, 3, 1), 1, 3, True
    )
    np.testing.assert_allclose(hx.transpose(0, 3, 1, 2), gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hw.transpose(2, 0, 1), gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hb, gb, rtol=1e-12, atol=1e-12)


def test_bad_shapes_raise():
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(ValueError):
        dw.depthwise_conv2d_nchw_forward(x, np.zeros((4, 3, 3), np.float32))
    with pytest.raises(ValueError):
        dw.depthwise_conv2d_nchw_forward(x, np.zeros((3, 7, 7), np.float32), None, 1, 0)
    with pytest.raises(ValueError):
        dw.depthwise_conv2d_nhwc_forward(x.transpose(0, 2, 3, 1), np.zeros((3, 3, 4), np.float32))
    with pytest.raises(ValueError):
        dw.depthwise_conv2d_nchw_backward(
            x, np.zeros((3, 3, 3), np.float32), np.zeros((1, 3, 4, 4), np.float32), 1, 1
        )


# ---------------------------------------------------------------------------------------------------
# float32 parity with PyTorch
# ---------------------------------------------------------------------------------------------------


def _torch_ref(x_nchw, w_c1hw, b, g_nchw, stride, padding):
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(x_nchw).requires_grad_(True)
    tw = torch.from_numpy(w_c1hw).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    y = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding, groups=x_nchw.shape[1])
    gx, gw, gb = torch.autograd.grad(y, (tx, tw, tb), torch.from_numpy(g_nchw))
    return y.detach().numpy(), gx.numpy(), gw.numpy()[:, 0], gb.numpy()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "case",
    [
        (4, 32, 14, 14, 7, 7, (1, 1), (3, 3)),
        (2, 24, 7, 7, 7, 7, (1, 1), (3, 3)),
        (3, 5, 11, 9, 3, 5, (2, 1), (1, 2)),
    ],
)
def test_matches_torch_float32(layout, case):
    N, C, H, W, KH, KW, stride, padding = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    Ho = (H + 2 * padding[0] - KH) // stride[0] + 1
    Wo = (W + 2 * padding[1] - KW) // stride[1] + 1
    g = rng.standard_normal((N, C, Ho, Wo)).astype(np.float32)
    ty, tgx, tgw, tgb = _torch_ref(x, w[:, None].copy(), b, g, stride, padding)
    if layout == "nchw":
        y = dw.depthwise_conv2d_nchw_forward(x, w, b, stride, padding)
        gx, gw, gb = dw.depthwise_conv2d_nchw_backward(x, w, g, stride, padding, True)
    else:
        y = dw.depthwise_conv2d_nhwc_forward(
            x.transpose(0, 2, 3, 1), w.transpose(1, 2, 0), b, stride, padding
        )
        gx, gw, gb = dw.depthwise_conv2d_nhwc_backward(
            x.transpose(0, 2, 3, 1), w.transpose(1, 2, 0), g.transpose(0, 2, 3, 1), stride, padding, True
        )
        y, gx, gw = y.transpose(0, 3, 1, 2), gx.transpose(0, 3, 1, 2), gw.transpose(2, 0, 1)
    for a, r in ((y, ty), (gx, tgx), (gw, tgw), (gb, tgb)):
        np.testing.assert_allclose(a, r, rtol=0, atol=2e-5 * max(1.0, float(np.abs(r).max())))
