"""The CUDA kernels (autograd/kernels/cuda) against the op's own body, forward and backward.

Each family is checked through its ops: ``run(fn, arrays, path="emulated-cuda")`` against
``run(fn, arrays, path="body")`` (tests/op_runs.py), and the CUDA entry points that ran are recorded, so
that a check cannot pass on the body alone. ``device`` "cpu" runs the kernels in the CPU emulator (the CUDA
source compiled by the host C++ compiler, its threads run one after another): this checks indexing and
arithmetic on a machine without a GPU. ``device`` "cuda" runs the same ops on tensors moved with
``.to("cuda")``, the kernels on the GPU, against the body on NumPy copies; it is skipped where there is no
GPU. The AdamW kernel is checked against the optimizer's plain formula, ``optim.adamw.adamw_update``.
The sources, the wrappers' signatures, argument checks, and the ops and a model on the CUDA path:
test_cuda_path.py.
"""

import contextlib
import importlib
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd as ag
from autograd.backend import to_device, to_numpy
from autograd.kernels import emulate_cuda, use_reference
from autograd.kernels.cuda import adamw as cuda_adamw
from autograd.kernels.cuda import cross_entropy as cuda_ce
from autograd.kernels.cuda import emulator
from autograd.kernels.cuda import gelu as cuda_gelu
from autograd.nn import functional as F
from autograd.nn.functional.conv import DepthwiseConv2d
from autograd.optim.adamw import adamw_update
from autograd.utils import pair

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(scope="session")
def kernels_on(device):
    """The device whose CUDA kernels run: "cpu" (the emulator, skipped without a compiler) or "cuda"."""
    if device == "cpu" and emulator.compiler() is None:
        pytest.skip("no host C++ compiler for the CUDA emulator")
    return device


@pytest.fixture(scope="session")
def on(kernels_on):
    """Move a NumPy array to the device under test: the GPU, or stay on the CPU for the emulator."""
    return lambda a: None if a is None else to_device(np.ascontiguousarray(a), kernels_on)


def assert_close(actual, expected, dtype):
    actual = to_numpy(actual)
    assert actual.shape == np.shape(expected) and actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


@contextlib.contextmanager
def entry_points_called(family):
    """Within the block, record the names of the CUDA entry points of ``family`` that run (a set)."""
    module = importlib.import_module(f"autograd.kernels.cuda.{family}")
    called = set()

    def spy(name, entry_point):
        def recorded(*args, **kwargs):
            called.add(name)
            return entry_point(*args, **kwargs)

        return recorded

    with pytest.MonkeyPatch.context() as patch:
        for name, entry_point in list(vars(module).items()):
            if inspect.isfunction(entry_point) and not name.startswith("_"):
                patch.setattr(module, name, spy(name, entry_point))
        yield called


def on_cuda_path(device, fn, arrays, **options):
    """``run(fn, arrays)`` with the CUDA kernels: in the emulator (device "cpu"), or on the GPU (device
    "cuda": fn gets the inputs moved with ``.to("cuda")``, their gradients come back to the NumPy leaves)."""
    if device == "cpu":
        return run(fn, arrays, path="emulated-cuda", **options)
    return run(lambda *xs: fn(*(x.to("cuda") for x in xs)), arrays, path="fast", **options)


def assert_cuda_path_is_the_body(
    device, family, entry_points, fn, arrays, dtype, conditioning=1.0, **options
):
    """fn's output and input gradients through the CUDA kernels of ``family`` equal those of the op bodies
    (to rounding, times ``conditioning``), and the named entry points were among those that ran."""
    # The upstream gradient's seed: never one the inputs were drawn with (from 0 to 2**16), or the
    # upstream gradient would be x's own draws, and a norm's dx (nearly) zero: rounding noise.
    options.setdefault("grad_seed", 2**20)
    with entry_points_called(family) as called:
        actual = on_cuda_path(device, fn, arrays, **options)
    assert set(entry_points.split()) <= called, called
    rtol = TOLERANCE[dtype]["rtol"] * conditioning
    assert_same(actual, run(fn, arrays, path="body", **options), dtype, rtol=rtol)


def conditioning(x, axis):
    """A norm's y and dx carry a factor rstd: where a group's values nearly coincide, the rounding of the
    kernels' float32 mean (the body keeps xhat in float64) is amplified by it."""
    var = np.asarray(x, np.float64).var(axis=axis)
    return max(1.0, float(np.max(1.0 / np.sqrt(var + 1e-6), initial=1.0)))


def forward_without_grad(device, fn, arrays, body=False):
    """fn's output under ``autograd.no_grad()``: the op bodies' (``body``), or the CUDA kernels'."""
    tensors = [ag.tensor(a) for a in arrays]
    with contextlib.ExitStack() as stack:
        stack.enter_context(ag.no_grad())
        stack.enter_context(use_reference(body))
        if not body and device == "cpu":
            stack.enter_context(emulate_cuda())
        if not body and device == "cuda":
            tensors = [t.to("cuda") for t in tensors]
        return fn(*tensors).numpy()


def assert_no_grad_cuda_path_is_the_body(device, family, entry_point, fn, arrays, dtype):
    """As assert_cuda_path_is_the_body for a forward without grad, which ``entry_point`` computes."""
    with entry_points_called(family) as called:
        actual = forward_without_grad(device, fn, arrays)
    assert entry_point in called, called
    expected = forward_without_grad(device, fn, arrays, body=True)
    assert_same((actual, []), (expected, []), dtype, rtol=TOLERANCE[dtype]["rtol"])


# -- each family through its ops, against the ops' bodies ------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@settings(max_examples=5)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_gelu(kernels_on, on, approximate, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)

    def gelu(x):
        return F.gelu(x, approximate)

    assert_cuda_path_is_the_body(
        kernels_on, "gelu", "gelu_forward_with_slope gelu_backward_from_slope", gelu, [x], dtype
    )
    assert_no_grad_cuda_path_is_the_body(kernels_on, "gelu", "gelu_forward", gelu, [x], dtype)
    # The Linear layer's epilogue: the bias and GELU after the product, the bias gradient with the multiply.
    features = shape[-1]
    rows = x.reshape(-1, features)
    weight = (rng.standard_normal((features, features)) / np.sqrt(features)).astype(dtype)
    bias = rng.standard_normal(features).astype(dtype)

    def linear_gelu(x, w, b):
        return F.linear_gelu(x, w, b, approximate)

    epilogue = "bias_gelu_forward_with_slope gelu_backward_from_slope_with_bias_grad"
    assert_cuda_path_is_the_body(kernels_on, "gelu", epilogue, linear_gelu, [rows, weight, bias], dtype)
    no_slope = "bias_gelu_forward"
    assert_no_grad_cuda_path_is_the_body(
        kernels_on, "gelu", no_slope, linear_gelu, [rows, weight, bias], dtype
    )
    # gelu_backward (from x, no slope kept), which no op calls: the slope's multiply, in one kernel.
    grad_y = rng.standard_normal(shape).astype(dtype)
    _, slope = cuda_gelu.gelu_forward_with_slope(on(x), approximate)
    assert_close(
        cuda_gelu.gelu_backward(on(x), on(grad_y), approximate),
        to_numpy(cuda_gelu.gelu_backward_from_slope(on(grad_y), slope)),
        dtype,
    )


AFFINE = ["learned", "frozen", "none"]  # weight and bias with gradients, without, or no weight and bias


def _affine_inputs(rng, affine, channels, dtype):
    """The weight and bias arrays (or none) and the needs_grad of [x, *them]."""
    if affine == "none":
        return [], [True]
    return list(rng.standard_normal((2, channels)).astype(dtype)), [True] + [affine == "learned"] * 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", AFFINE)
@settings(max_examples=5)
@given(rows=st.integers(1, 150), channels=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_layer_norm_channels_last(kernels_on, affine, dtype, rows, channels, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, channels)) * 3 + 1).astype(dtype)
    weights, needs_grad = _affine_inputs(rng, affine, channels, dtype)

    def layer_norm(x, *weights):
        return F.layer_norm(x, (channels,), *weights, eps=1e-6)

    entry_points = "layer_norm_forward layer_norm_backward"
    how = dict(needs_grad=needs_grad, conditioning=conditioning(x, -1))
    assert_cuda_path_is_the_body(
        kernels_on, "layer_norm", entry_points, layer_norm, [x, *weights], dtype, **how
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", AFFINE)
@settings(max_examples=5)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6)),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_channels_first(kernels_on, affine, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    weights, needs_grad = _affine_inputs(rng, affine, shape[1], dtype)

    def layer_norm(x, *weights):
        return F.layer_norm_channels_first(x, *weights, eps=1e-6)

    entry_points = "layer_norm_channels_first_forward layer_norm_channels_first_backward"
    how = dict(needs_grad=needs_grad, conditioning=conditioning(x, 1))
    assert_cuda_path_is_the_body(
        kernels_on, "layer_norm", entry_points, layer_norm, [x, *weights], dtype, **how
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@settings(max_examples=5)
@given(
    shape=st.tuples(st.integers(2, 4), st.integers(1, 9), st.integers(1, 6), st.integers(1, 40)),
    channels_last=st.booleans(),
    affine=st.sampled_from(AFFINE),
    seed=st.integers(0, 2**16),
)
def test_batch_norm(kernels_on, training, dtype, shape, channels_last, affine, seed):
    rng = np.random.default_rng(seed)
    channels = shape[-1] if channels_last else shape[1]
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    running = [rng.standard_normal(channels).astype(dtype), rng.uniform(0.5, 2, channels).astype(dtype)]
    weights, needs_grad = _affine_inputs(rng, affine, channels, dtype)
    updated = []  # the running statistics after each run: in training, what the batch's statistics give

    def batch_norm(x, running_mean, running_var, *weights):
        y = F.batch_norm(
            x, running_mean, running_var, *weights, training=training, channels_last=channels_last
        )
        updated.append((running_mean, running_var))
        return y

    entry_points = "batch_norm_normalize batch_norm_backward"
    entry_points += " batch_norm_statistics" if training else ""
    arrays, needs_grad = [x, *running, *weights], [True, False, False, *needs_grad[1:]]
    axes = tuple(a for a in range(x.ndim) if a != (x.ndim - 1 if channels_last else 1))
    how = dict(needs_grad=needs_grad, conditioning=conditioning(x, axes) if training else 1.0)
    assert_cuda_path_is_the_body(kernels_on, "batch_norm", entry_points, batch_norm, arrays, dtype, **how)
    (cuda_mean, cuda_var), (body_mean, body_var) = updated
    assert_close(cuda_mean.numpy(), body_mean.numpy(), dtype)
    assert_close(cuda_var.numpy(), body_var.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kernel, stride, padding",
    [((3, 3), (2, 2), (1, 1)), ((2, 2), (2, 2), (0, 0)), ((3, 2), (1, 2), (1, 0)), ((4, 4), (3, 1), (2, 1))],
)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@settings(max_examples=4)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(4, 9), st.integers(4, 9)),
    seed=st.integers(0, 2**16),
)
def test_max_pool2d(kernels_on, dtype, kernel, stride, padding, ties, shape, seed):
    rng = np.random.default_rng(seed)
    # ties: shared maxima, where only the first maximal tap of a window may take the gradient
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)

    def max_pool2d(x):
        return F.max_pool2d(x, kernel, stride, padding)

    entry_points = "max_pool2d_forward max_pool2d_backward"
    assert_cuda_path_is_the_body(kernels_on, "max_pool2d", entry_points, max_pool2d, [x], dtype)


GEOMETRIES = [(7, 1, 3), (3, 1, 1), (3, 2, 1), (2, 2, 0), (4, 4, 0), (5, (2, 1), (0, 2)), (1, 1, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [True, False], ids=["nhwc", "nchw"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@settings(max_examples=3)
@given(
    image=st.tuples(st.integers(1, 2), st.integers(1, 6), st.integers(7, 12), st.integers(7, 12)),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_depthwise_conv2d(kernels_on, channels_last, geometry, dtype, image, bias, seed):
    kernel, stride, padding = geometry
    stride, padding = pair(stride), pair(padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(image).astype(dtype)  # (N, C, H, W)
    weight = rng.standard_normal((image[1], 1, kernel, kernel)).astype(dtype)
    arrays = [x, weight] + ([rng.standard_normal(image[1]).astype(dtype)] if bias else [])

    def depthwise_conv2d(x, weight, *bias):
        b = bias[0] if bias else None
        if channels_last:  # a non-contiguous view (N, H, W, C); the op gives the kernels (KH, KW, C) filters
            return F.depthwise_conv2d_channels_last(x.permute(0, 2, 3, 1), weight, b, stride, padding)
        return DepthwiseConv2d.apply(x, weight, b, stride=stride, padding=padding, channels_last=False)

    layout = "nhwc" if channels_last else "nchw"
    entry_points = f"depthwise_conv2d_{layout}_forward depthwise_conv2d_{layout}_backward"
    assert_cuda_path_is_the_body(
        kernels_on, "depthwise_conv2d", entry_points, depthwise_conv2d, arrays, dtype
    )


@pytest.mark.filterwarnings("ignore:All-NaN axis:RuntimeWarning")  # every label ignored: a nan mean
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@settings(max_examples=5)
@given(
    n=st.integers(1, 20),
    k=st.integers(1, 12),
    smoothing=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy(kernels_on, soft, reduction, dtype, n, k, smoothing, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * 4).astype(dtype)
    if soft:
        target = rng.random((n, k)).astype(dtype)
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, k, n)
        target[rng.random(n) < 0.2] = -100  # ignored samples (all of them: a nan mean, as PyTorch's)

    def cross_entropy(z, target):
        return F.cross_entropy(z, target, label_smoothing=smoothing, reduction=reduction)

    entry_points = "cross_entropy_forward cross_entropy_backward"
    assert_cuda_path_is_the_body(
        kernels_on, "cross_entropy", entry_points, cross_entropy, [z, target], dtype, needs_grad=[True, soft]
    )


@pytest.mark.filterwarnings("ignore:All-NaN axis:RuntimeWarning")  # assert_same's scale of a nan loss
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_every_sample_ignored(kernels_on, reduction):
    """The mean over no sample is nan (as PyTorch's), and every gradient 0."""

    def cross_entropy(z, labels):
        return F.cross_entropy(z, labels, label_smoothing=0.1, reduction=reduction)

    arrays = [np.arange(12, dtype=np.float64).reshape(4, 3), np.full(4, -100)]
    entry_points = "cross_entropy_forward cross_entropy_backward"
    options = dict(needs_grad=[True, False])
    assert_cuda_path_is_the_body(
        kernels_on, "cross_entropy", entry_points, cross_entropy, arrays, np.float64, **options
    )
    loss, (grad_z, _) = run(cross_entropy, arrays, path="body", **options)
    assert np.isnan(loss) if reduction == "mean" else not loss.any()
    assert not grad_z.any()


def test_cross_entropy_rejects_a_class_out_of_range(on):
    with pytest.raises(IndexError, match=r"1 target\(s\) out of range \[0, 3\)"):
        cuda_ce.cross_entropy_forward(on(np.zeros((2, 3), np.float32)), on(np.array([0, 3])))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=5)
@given(size=st.integers(1, 600), step=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_adamw_step(on, dtype, size, step, seed):
    """The fused kernel against the optimizer's plain formula, ``autograd.optim.adamw.adamw_update``."""
    rng = np.random.default_rng(seed)
    p, g, m = rng.standard_normal((3, size)).astype(dtype)
    v = rng.random(size).astype(dtype)
    hyper = (3e-3, 0.9, 0.999, 1e-8, 0.05, step)
    state = [on(a.copy()) for a in (p, g, m, v)]
    cuda_adamw.adamw_update(*state, cuda_adamw.adamw_hyper(*hyper))
    expected = [a.copy() for a in (p, g, m, v)]
    adamw_update(*expected, *hyper)
    for actual, wanted in zip(state, expected, strict=True):
        assert_close(actual, wanted, dtype)
