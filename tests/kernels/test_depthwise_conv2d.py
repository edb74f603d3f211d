"""Depthwise conv2d kernels: fast (Numba) == plain NumPy reference, and float32 parity with PyTorch."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import depthwise_conv2d as dw

FWD = {"nchw": dw.depthwise_conv2d_nchw_forward, "nhwc": dw.depthwise_conv2d_nhwc_forward}
BWD = {"nchw": dw.depthwise_conv2d_nchw_backward, "nhwc": dw.depthwise_conv2d_nhwc_backward}
FWD_REF = {
    "nchw": dw.depthwise_conv2d_nchw_forward_reference,
    "nhwc": dw.depthwise_conv2d_nhwc_forward_reference,
}
BWD_REF = {
    "nchw": dw.depthwise_conv2d_nchw_backward_reference,
    "nhwc": dw.depthwise_conv2d_nhwc_backward_reference,
}

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(a, b, dtype):
    """Relative to the largest magnitude: float64 tight, float32 ~1e-5."""
    assert a.shape == b.shape and a.dtype == np.dtype(dtype)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


def _make(rng, layout, N, C, H, W, KH, KW, dtype):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, KH, KW)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        w = np.ascontiguousarray(w.transpose(1, 2, 0))
    return x, w, b


def _out_shape(layout, N, C, Ho, Wo):
    return (N, C, Ho, Wo) if layout == "nchw" else (N, Ho, Wo, C)


def _check(layout, N, C, H, W, KH, KW, stride, padding, dtype, seed, bias=True):
    sh, sw = stride
    ph, pw = padding
    Ho = (H + 2 * ph - KH) // sh + 1
    Wo = (W + 2 * pw - KW) // sw + 1
    if Ho < 1 or Wo < 1:
        return
    rng = np.random.default_rng(seed)
    x, w, b = _make(rng, layout, N, C, H, W, KH, KW, dtype)
    b = b if bias else None
    g = rng.standard_normal(_out_shape(layout, N, C, Ho, Wo)).astype(dtype)
    out = FWD[layout](x, w, b, stride, padding)
    ref = FWD_REF[layout](
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        stride,
        padding,
    )
    _close(out, ref, dtype)
    gx, gw, gb = BWD[layout](x, w, g, stride, padding, bias)
    rx, rw, rb = BWD_REF[layout](
        x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), stride, padding, bias
    )
    assert gx.shape == x.shape and gw.shape == w.shape
    _close(gx, rx, dtype)
    _close(gw, rw, dtype)
    if bias:
        _close(gb, rb, dtype)
    else:
        assert gb is None


geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 20),  # C (crosses the 16-lane channel blocks of the NHWC kernels)
    st.integers(1, 11),  # H
    st.integers(1, 11),  # W
    st.integers(1, 7),  # KH
    st.integers(1, 7),  # KW
    st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1)]),
    st.tuples(st.integers(0, 4), st.integers(0, 4)),
)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@SETTINGS
@given(geom=geometry, seed=st.integers(0, 2**31 - 1), bias=st.booleans())
def test_fast_matches_reference(layout, dtype, geom, seed, bias):
    N, C, H, W, KH, KW, stride, padding = geom
    _check(layout, N, C, H, W, KH, KW, stride, padding, dtype, seed, bias)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
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
    N, C, H, W, KH, KW, stride, padding = case
    _check(layout, N, C, H, W, KH, KW, stride, padding, dtype, seed=7)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_reference_runs_on_device(device, layout, dtype, bias):
    """The references compute with the array module of their inputs: on ``device`` they return arrays
    there, equal to the NumPy results up to rounding (sums may add in another order)."""
    rng = np.random.default_rng(13)
    x, w, b = _make(rng, layout, 2, 5, 9, 8, 3, 5, dtype)
    b = b if bias else None
    stride, padding = (2, 1), (1, 2)
    out = FWD_REF[layout](x, w, b, stride, padding)
    g = rng.standard_normal(out.shape).astype(dtype)
    expected = (out,) + BWD_REF[layout](x, w, g, stride, padding, bias)

    def on_device(a):
        return None if a is None else to_device(a, device)

    results = (FWD_REF[layout](on_device(x), on_device(w), on_device(b), stride, padding),) + BWD_REF[layout](
        on_device(x), on_device(w), on_device(g), stride, padding, bias
    )
    for a, e in zip(results, expected, strict=False):
        if e is None:
            assert a is None
        else:
            assert device_of(a) == device
            _close(to_numpy(a), e, dtype)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_non_contiguous_inputs(layout):
    rng = np.random.default_rng(3)
    N, C, H, W, K = 2, 5, 9, 7, 7
    # build every operand as a strided view
    xb = rng.standard_normal((N, C, H, 2 * W)).astype(np.float32)
    x = xb[..., ::2] if layout == "nchw" else xb[..., ::2].transpose(0, 2, 3, 1)
    wb = rng.standard_normal((K, K, C)).astype(np.float32)
    w = wb.transpose(2, 0, 1) if layout == "nchw" else wb
    b = rng.standard_normal(2 * C).astype(np.float32)[::2]
    gb_ = rng.standard_normal((N, H, W, C)).astype(np.float32)
    g = gb_.transpose(0, 3, 1, 2) if layout == "nchw" else gb_
    assert not x.flags.c_contiguous and not b.flags.c_contiguous
    out = FWD[layout](x, w, b, 1, 3)
    _close(
        out,
        FWD_REF[layout](x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 3),
        np.float32,
    )
    got = BWD[layout](x, w, g, 1, 3, True)
    ref = BWD_REF[layout](x.astype(np.float64), w.astype(np.float64), g.astype(np.float64), 1, 3, True)
    for a, r in zip(got, ref, strict=False):
        _close(a, r, np.float32)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_deterministic(layout):
    """Same inputs -> bit-identical outputs, also with a different number of threads."""
    import numba

    rng = np.random.default_rng(5)
    N, C, H, W = 4, 24, 12, 12
    x, w, b = _make(rng, layout, N, C, H, W, 7, 7, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    first = (FWD[layout](x, w, b, 1, 3),) + BWD[layout](x, w, g, 1, 3, True)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = (FWD[layout](x, w, b, 1, 3),) + BWD[layout](x, w, g, 1, 3, True)
    finally:
        numba.set_num_threads(old)
    again = (FWD[layout](x, w, b, 1, 3),) + BWD[layout](x, w, g, 1, 3, True)
    for a, s, c in zip(first, single, again, strict=False):
        assert np.array_equal(a, s) and np.array_equal(a, c)


def test_layouts_agree():
    rng = np.random.default_rng(11)
    x, w, b = _make(rng, "nchw", 2, 19, 10, 9, 7, 7, np.float64)
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


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
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
