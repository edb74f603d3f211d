"""Exercise 06: col2im for stride 2 is the adjoint of im2col, and gives the engine's gradient of a
stride-2 convolution."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd.nn import functional as F


def _im2col_stride2(x, k):
    """cols[n, i, j, c, u, v] = x[n, c, 2 i + u, 2 j + v] (the forward that col2im undoes)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::2, ::2]
    return windows.transpose(0, 2, 3, 1, 4, 5)


geometries = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4)).flatmap(
    lambda nck: st.tuples(st.just(nck), st.integers(nck[2], 9), st.integers(nck[2], 9))
)


@settings(max_examples=15)
@given(geometry=geometries, data=st.data())
def test_col2im_is_the_adjoint_of_im2col(exercise, geometry, data):
    col2im_stride2 = exercise("06_col2im_stride2").col2im_stride2
    (n, c, k), h, w = geometry
    rng = rng_from(data.draw)
    x = rng.standard_normal((n, c, h, w))
    cols = _im2col_stride2(x, k)
    grad_cols = rng.standard_normal(cols.shape)
    grad_x = col2im_stride2(grad_cols, x.shape)
    assert np.shape(grad_x) == x.shape
    # <im2col(x), grad_cols> = <x, col2im(grad_cols)> for every x: col2im is im2col's transpose
    np.testing.assert_allclose(np.sum(cols * grad_cols), np.sum(x * grad_x), rtol=1e-10)


@settings(max_examples=15)
@given(geometry=geometries, o=st.integers(1, 3), data=st.data())
def test_col2im_gives_the_input_gradient_of_a_stride_2_convolution(exercise, geometry, o, data):
    col2im_stride2 = exercise("06_col2im_stride2").col2im_stride2
    (n, c, k), h, w = geometry
    rng = rng_from(data.draw)
    x = ag.tensor(rng.standard_normal((n, c, h, w)), requires_grad=True)
    weight = rng.standard_normal((o, c, k, k))
    out = F.conv2d(x, ag.tensor(weight), stride=2)
    grad_out = rng.standard_normal(out.shape)
    out.backward(ag.tensor(grad_out))

    grad_cols = np.einsum("noij,ocuv->nijcuv", grad_out, weight)  # dL/dcols = dout @ W
    mine = col2im_stride2(grad_cols, x.shape)
    np.testing.assert_allclose(mine, x.grad.data, rtol=1e-10, atol=1e-12)
