"""Hypothesis strategies for shapes, and helpers that fill tensors from a drawn seed.

Values are drawn as one seed, not element by element: hypothesis then shrinks shapes, and NumPy
fills the arrays quickly. Helpers keep values away from the kinks of relu/abs/clip/max.
"""

import numpy as np
from hypothesis import strategies as st

import autograd

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def shapes(draw, min_dims=0, max_dims=4, min_side=1, max_side=5):
    """Shapes with odd sizes and size-1 axes."""
    ndim = draw(st.integers(min_dims, max_dims))
    return tuple(draw(st.integers(min_side, max_side)) for _ in range(ndim))


@st.composite
def broadcastable_shapes(draw, min_dims=0, max_dims=4, max_side=4):
    """Two shapes that broadcast together: the second may drop leading axes and set axes to 1."""
    a = draw(shapes(min_dims, max_dims, 1, max_side))
    drop = draw(st.integers(0, len(a)))
    b = list(a[drop:])
    for i in range(len(b)):
        if draw(st.booleans()):
            b[i] = 1
    b = tuple(b)
    return (a, b) if draw(st.booleans()) else (b, a)


def rng_from(draw):
    return np.random.default_rng(draw(seeds))


def leaf(array, requires_grad=True):
    """A float64 leaf tensor for a gradient check."""
    return autograd.tensor(np.asarray(array, dtype=np.float64), dtype=np.float64, requires_grad=requires_grad)


def values(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def values_away_from_zero(rng, shape, gap=0.1, high=2.0):
    """Values with |v| >= gap: finite differences must not step over a kink at zero."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(gap, high, size=shape)


def distinct_values(rng, shape, gap=0.05):
    """Values at least ``gap`` apart, so max/min have no ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2 + rng.uniform(0, gap / 10)).reshape(shape)
