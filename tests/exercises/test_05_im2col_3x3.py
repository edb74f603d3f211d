"""Exercise 05: im2col for a 3x3 kernel with padding 1; a matrix product with its rows is the conv."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd.nn import functional as F


@settings(max_examples=15)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    o=st.integers(1, 3),
    data=st.data(),
)
def test_im2col_times_the_weights_is_the_convolution(exercise, n, c, h, w, o, data):
    im2col_3x3 = exercise("05_im2col_3x3").im2col_3x3
    rng = rng_from(data.draw)
    x, weight = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3))
    cols = im2col_3x3(x)
    assert np.shape(cols) == (n * h * w, c * 9)

    out = (cols @ weight.reshape(o, c * 9).T).reshape(n, h, w, o).transpose(0, 3, 1, 2)
    expected = F.conv2d(ag.tensor(x), ag.tensor(weight), padding=1).data
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_im2col_reads_zeros_outside_the_image(exercise):
    im2col_3x3 = exercise("05_im2col_3x3").im2col_3x3
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)  # [[1, 2], [3, 4]]
    cols = im2col_3x3(x)
    # the window of the top-left pixel: the padded row above, then [0, 1, 2], then [0, 3, 4]
    assert np.array_equal(cols[0], [0, 0, 0, 0, 1, 2, 0, 3, 4])
    assert np.array_equal(cols[3], [1, 2, 0, 3, 4, 0, 0, 0, 0])
