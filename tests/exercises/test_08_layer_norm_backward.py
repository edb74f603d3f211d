"""Exercise 08: LayerNorm's hand-derived backward equals the engine's, for the input, weight and bias."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from, shapes

import autograd as ag
from autograd import kernels
from autograd.nn import functional as F


@settings(max_examples=15)
@given(rows=shapes(min_dims=0, max_dims=2, max_side=4), d=st.integers(2, 8), data=st.data())
def test_layer_norm_backward_matches_the_engine(exercise, rows, d, data):
    layer_norm_backward = exercise("08_layer_norm_backward").layer_norm_backward
    rng = rng_from(data.draw)
    shape = rows + (d,)
    x_values = 3.0 * rng.standard_normal(shape) + 1.0
    weight_values, grad_out = rng.standard_normal(d), rng.standard_normal(shape)
    x, weight = ag.tensor(x_values, requires_grad=True), ag.tensor(weight_values, requires_grad=True)
    bias = ag.tensor(rng.standard_normal(d), requires_grad=True)
    with kernels.use_reference():
        F.layer_norm(x, d, weight, bias, eps=1e-5).backward(ag.tensor(grad_out))

    grad_x, grad_weight, grad_bias = layer_norm_backward(x_values, weight_values, grad_out, 1e-5)
    for name, mine, engine in (
        ("x", grad_x, x.grad),
        ("weight", grad_weight, weight.grad),
        ("bias", grad_bias, bias.grad),
    ):
        assert np.shape(mine) == engine.shape, (
            f"dL/d{name} has shape {np.shape(mine)}, expected {engine.shape}"
        )
        np.testing.assert_allclose(mine, engine.data, rtol=1e-9, atol=1e-12, err_msg=f"dL/d{name}")
