"""Bad input to the functional ops raises ValueError naming what was expected and what came."""

import numpy as np
import pytest

import autograd as ag
from autograd.nn import functional as F


def z(*shape):
    return ag.zeros(*shape)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (
            lambda: F.conv2d(z(3, 8, 8), z(4, 3, 3, 3)),
            r"conv2d expects input of shape \(N, C, H, W\), got shape \(3, 8, 8\)",
        ),
        (
            lambda: F.conv2d(z(1, 3, 8, 8), z(4, 3, 3)),
            r"weight of shape \(O, C/groups, KH, KW\), got shape \(4, 3, 3\)",
        ),
        (
            lambda: F.conv2d(z(1, 6, 8, 8), z(4, 3, 3, 3), groups=4),
            r"groups=4 must divide both the input channels \(6",
        ),
        (
            lambda: F.conv2d(z(1, 6, 8, 8), z(4, 2, 3, 3), groups=2),
            r"weight \(4, 2, 3, 3\) expects 4 input channels .* has 6",
        ),
        (lambda: F.conv2d(z(1, 3, 8, 8), z(4, 5, 3, 3)), r"weight \(4, 5, 3, 3\) expects 5 input channels"),
        (lambda: F.conv2d(z(1, 3, 8, 8), z(4, 3, 3, 3), z(5)), r"bias must have shape \(4,\) .* got \(5,\)"),
        (lambda: F.conv2d(z(1, 3, 2, 2), z(4, 3, 5, 5)), r"smaller than the kernel \(5, 5\)"),
        (lambda: F.conv2d(z(1, 3, 8, 8), z(4, 3, 3, 3), padding=-1), r"padding >= 0"),
        (
            lambda: F.linear(z(2, 5), z(3, 4)),
            r"input \(2, 5\) must end with in_features=4 to match weight \(3, 4\)",
        ),
        (lambda: F.layer_norm(z(2, 5), (4,)), r"input \(2, 5\) must end with normalized_shape \(4,\)"),
        (lambda: F.layer_norm(z(2, 5), 5, z(4), z(5)), r"weight must have shape \(5,\) .* got \(4,\)"),
        (lambda: F.layer_norm_channels_first(z(2, 3, 4, 4), z(4), z(4)), r"weight must have shape \(3,\)"),
        (
            lambda: F.max_pool2d(z(1, 1, 4, 4), 2, padding=2),
            r"padding \(2, 2\) must be between 0 and half the kernel size",
        ),
        (lambda: F.avg_pool2d(z(1, 4, 4), 2), r"avg_pool2d expects input of shape \(N, C, H, W\)"),
        (
            lambda: F.cross_entropy(z(4, 3), np.zeros(5, dtype=np.int64)),
            r"labels must have shape \(4,\) for logits \(4, 3\), got \(5,\)",
        ),
        (
            lambda: F.cross_entropy(z(4, 3), z(4, 2)),
            r"soft targets must have the logits' shape \(4, 3\), got \(4, 2\)",
        ),
        (
            lambda: F.cross_entropy(z(4, 3, 2), np.zeros(4, dtype=np.int64)),
            r"logits of shape \(N, K\), got shape \(4, 3, 2\)",
        ),
        (lambda: F.gelu(z(2), approximate="fast"), r"approximate must be 'none' or 'tanh', got 'fast'"),
        (lambda: F.dropout(z(2), p=1.5), r"p must be a probability in \[0, 1\], got 1.5"),
        (
            lambda: F.linear_gelu(z(2, 5), z(3, 4), z(3)),
            r"linear_gelu: input \(2, 5\) must end with in_features=4",
        ),
        (
            lambda: F.linear_gelu(z(2, 4), z(3, 4), z(2)),
            r"linear_gelu: bias must have shape \(3,\) .* got \(2,\)",
        ),
        (
            lambda: F.linear_gelu(z(2, 4), z(3, 4), z(3), approximate="fast"),
            r"approximate must be 'none' or 'tanh'",
        ),
        (
            lambda: F.residual_add(z(2, 4, 4, 8), z(2, 4, 4, 6)),
            r"same shape \(N, \.\.\., C\), got \(2, 4, 4, 8\) and \(2, 4, 4, 6\)",
        ),
        (
            lambda: F.residual_add(z(2, 4, 4, 8), z(2, 4, 4, 8), z(6)),
            r"gamma must have shape \(8,\) .* got \(6,\)",
        ),
        (
            lambda: F.residual_add(z(2, 8), z(2, 8), drop_prob=-0.1),
            r"p must be a probability in \[0, 1\], got -0.1",
        ),
        (
            lambda: F.batch_norm(z(4, 3), z(2), z(3)),
            r"running_mean must have shape \(3,\) for input \(4, 3\), got \(2,\)",
        ),
    ],
)
def test_bad_input_is_named(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_cross_entropy_label_out_of_range():
    with pytest.raises(IndexError, match=r"out of range \[0, 3\)"):
        F.cross_entropy(z(2, 3), np.array([0, 3]))
