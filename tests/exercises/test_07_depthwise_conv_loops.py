"""Exercise 07: the depthwise convolution written tap by tap equals the engine's grouped convolution."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd.nn import functional as F


@st.composite
def depthwise_geometries(draw):
    """(N, C, H, W, K, padding) with the padded image at least as large as the kernel."""
    k = draw(st.sampled_from([1, 3, 5, 7]))
    padding = draw(st.integers(0, k // 2))
    smallest = max(1, k - 2 * padding)
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    return (
        n,
        c,
        draw(st.integers(smallest, smallest + 4)),
        draw(st.integers(smallest, smallest + 4)),
        k,
        padding,
    )


@settings(max_examples=15)
@given(geometry=depthwise_geometries(), with_bias=st.booleans(), data=st.data())
def test_depthwise_conv2d_matches_the_engine(exercise, geometry, with_bias, data):
    depthwise_conv2d = exercise("07_depthwise_conv_loops").depthwise_conv2d
    n, c, h, w, k, padding = geometry
    rng = rng_from(data.draw)
    x, weight = rng.standard_normal((n, c, h, w)), rng.standard_normal((c, 1, k, k))
    bias = rng.standard_normal(c) if with_bias else None

    mine = depthwise_conv2d(x, weight, bias, padding)
    expected = F.conv2d(
        ag.tensor(x), ag.tensor(weight), None if bias is None else ag.tensor(bias), padding=padding, groups=c
    ).data
    assert np.shape(mine) == expected.shape
    np.testing.assert_allclose(mine, expected, rtol=1e-10, atol=1e-12)


def test_each_channel_sees_only_itself(exercise):
    depthwise_conv2d = exercise("07_depthwise_conv_loops").depthwise_conv2d
    x = np.zeros((1, 3, 5, 5))
    x[0, 1, 2, 2] = 1.0  # one impulse, in channel 1
    weight = np.arange(27.0).reshape(3, 1, 3, 3)
    out = depthwise_conv2d(x, weight, None, 1)
    assert not out[0, 0].any() and not out[0, 2].any()
    assert np.array_equal(
        out[0, 1, 1:4, 1:4], weight[1, 0, ::-1, ::-1]
    )  # the impulse response: the flipped filter
