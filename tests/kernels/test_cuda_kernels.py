"""The CUDA kernels (autograd/kernels/cuda) against the plain references, forward and backward.

``device`` "cpu" runs every kernel in the CPU emulator (the CUDA source compiled by the host C++ compiler,
its threads run one after another): this checks indexing and arithmetic on a machine without a GPU.
``device`` "cuda" runs the same tests on the GPU and is skipped where there is none. Also here: every
CUDA source compiles with ``nvcc --ptx`` (skipped without nvcc), argument checking, the dispatch, and
a whole ConvNeXt training step on the CUDA path equal to the Numba path.
"""

import contextlib
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd as ag
from autograd import optim
from autograd import random as ag_random
from autograd.backend import to_device, to_numpy
from autograd.kernels import dispatch
from autograd.kernels.cpu import batch_norm as cpu_bn
from autograd.kernels.cpu import cross_entropy as cpu_ce
from autograd.kernels.cpu import depthwise_conv2d as cpu_dw
from autograd.kernels.cpu import gelu as cpu_gelu
from autograd.kernels.cpu import layer_norm as cpu_ln
from autograd.kernels.cpu import max_pool2d as cpu_mp
from autograd.kernels.cuda import adamw as cuda_adamw
from autograd.kernels.cuda import batch_norm as cuda_bn
from autograd.kernels.cuda import cross_entropy as cuda_ce
from autograd.kernels.cuda import depthwise_conv2d as cuda_dw
from autograd.kernels.cuda import emulator
from autograd.kernels.cuda import gelu as cuda_gelu
from autograd.kernels.cuda import layer_norm as cuda_ln
from autograd.kernels.cuda import max_pool2d as cuda_mp
from autograd.kernels.cuda.source import CudaSource, parse_params
from autograd.nn import functional as F
from autograd.optim.adamw import adamw_update_reference

FAMILIES = [cuda_gelu, cuda_adamw, cuda_ln, cuda_bn, cuda_mp, cuda_dw, cuda_ce]
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

needs_compiler = pytest.mark.skipif(
    emulator.compiler() is None, reason="no host C++ compiler for the CUDA emulator"
)


@pytest.fixture(scope="session")
def on(device):
    """Move a NumPy array to the device under test: the GPU, or stay on the CPU for the emulator."""
    if device == "cpu" and emulator.compiler() is None:
        pytest.skip("no host C++ compiler for the CUDA emulator")
    return lambda a: None if a is None else to_device(np.ascontiguousarray(a), device)


def assert_close(actual, expected, dtype):
    actual = to_numpy(actual)
    assert actual.shape == np.shape(expected) and actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


# -- the sources ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("family", FAMILIES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_cuda_source_compiles_with_nvcc(family, dtype, tmp_path):
    source = tmp_path / "kernels.cu"
    source.write_text(family.SOURCE.code_for(dtype))
    result = subprocess.run(
        [
            "nvcc",
            "--ptx",
            "-arch=sm_80",
            "-std=c++14",
            "-Werror",
            "all-warnings",
            "-o",
            str(tmp_path / "kernels.ptx"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    ptx = (tmp_path / "kernels.ptx").read_text()
    for kernel in family.SOURCE.kernels:
        assert f".entry {kernel}(" in ptx
    if dtype == np.float32 and family is cuda_gelu:
        assert ".f64" not in ptx  # float32 GELU stays in float32 (the float overloads of erfc, exp, tanh)


def test_parameters_are_read_from_the_source():
    params = parse_params("const scalar_t* __restrict__ x, scalar_t *y, long long n, double eps")
    assert [(p.name, p.ctype, p.pointer) for p in params] == [
        ("x", "scalar_t", True),
        ("y", "scalar_t", True),
        ("n", "long long", False),
        ("eps", "double", False),
    ]
    assert sorted(cuda_dw.SOURCE.kernels) == [
        "depthwise_backward_bias",
        "depthwise_backward_input",
        "depthwise_backward_weight",
        "depthwise_forward",
    ]


def test_bad_arguments_are_clear_errors_before_any_launch():
    x = np.zeros(8, np.float32)
    with pytest.raises(TypeError, match="'y' must be a C-contiguous float32 array, got float64"):
        cuda_gelu.SOURCE.launch("gelu_forward", 8, (x, np.zeros(8), 8, 0), np.float32)
    with pytest.raises(TypeError, match="not C-contiguous"):
        cuda_gelu.SOURCE.launch("gelu_forward", 4, (x, np.zeros(16, np.float32)[::2], 8, 0), np.float32)
    with pytest.raises(TypeError, match="expected 4 arguments"):
        cuda_gelu.SOURCE.launch("gelu_forward", 8, (x, x, 8), np.float32)
    with pytest.raises(TypeError, match="'n' must be a number"):
        cuda_gelu.SOURCE.launch("gelu_forward", 8, (x, x, x, 0), np.float32)
    with pytest.raises(TypeError, match="expected float32 or float64 arrays, got int32"):
        cuda_gelu.SOURCE.code_for(np.int32)
    with pytest.raises(ValueError, match="defines no"):
        CudaSource("empty", "__device__ int f() { return 0; }")


@needs_compiler
def test_a_compile_error_in_the_emulator_is_reported():
    broken = CudaSource(
        "broken", 'extern "C" __global__ void k(scalar_t* y, long long n) { y[0] = undefined; }'
    )
    with pytest.raises(RuntimeError, match="could not compile"):
        broken.launch("k", 1, (np.zeros(1, np.float32), 1), np.float32)


# -- each family against its reference ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@settings(max_examples=5)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_gelu(on, approximate, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    assert_close(
        cuda_gelu.gelu_forward(on(x), approximate), cpu_gelu.gelu_forward_reference(x, approximate), dtype
    )
    assert_close(
        cuda_gelu.gelu_backward(on(x), on(grad_y), approximate),
        cpu_gelu.gelu_backward_reference(x, grad_y, approximate),
        dtype,
    )
    y, slope = cuda_gelu.gelu_forward_with_slope(on(x), approximate)
    y_ref, slope_ref = cpu_gelu.gelu_forward_with_slope_reference(x, approximate)
    assert_close(y, y_ref, dtype)
    assert_close(slope, slope_ref, dtype)
    assert_close(cuda_gelu.gelu_backward_from_slope(on(grad_y), slope), grad_y * slope_ref, dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    rows = x.reshape(-1, shape[-1])
    y, slope = cuda_gelu.bias_gelu_forward_with_slope(on(rows), on(bias), approximate)
    y_ref, slope_ref = cpu_gelu.bias_gelu_forward_with_slope_reference(rows, bias, approximate)
    assert_close(y, y_ref, dtype)
    assert_close(slope, slope_ref, dtype)
    assert_close(cuda_gelu.bias_gelu_forward(on(rows), on(bias), approximate), y_ref, dtype)
    grad_pre, grad_bias = cuda_gelu.gelu_backward_from_slope_with_bias_grad(
        on(grad_y.reshape(rows.shape)), slope
    )
    assert_close(grad_pre, grad_y.reshape(rows.shape) * slope_ref, dtype)
    assert_close(grad_bias, (grad_y.reshape(rows.shape) * slope_ref).sum(axis=0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@settings(max_examples=5)
@given(rows=st.integers(1, 150), channels=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_layer_norm_channels_last(on, affine, dtype, rows, channels, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, channels)) * 3 + 1).astype(dtype)
    w, b = rng.standard_normal((2, channels)).astype(dtype) if affine else (None, None)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, mean, rstd = cuda_ln.layer_norm_forward(on(x), on(w), on(b), 1e-6)
    expected = cpu_ln.layer_norm_forward_reference(x, w, b, 1e-6)
    for actual, wanted in zip((y, mean, rstd), expected, strict=False):
        assert_close(actual, wanted, dtype)
    grads = cuda_ln.layer_norm_backward(on(dy), on(x), on(w), mean, rstd, affine)
    wanted = cpu_ln.layer_norm_backward_reference(dy, x, w, expected[1], expected[2], affine)
    for actual, expected_grad in zip(grads, wanted, strict=False):
        assert (actual is None) == (expected_grad is None)
        if actual is not None:
            assert_close(actual, expected_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=5)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6)),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_channels_first(on, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    w, b = rng.standard_normal((2, shape[1])).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    y, mean, rstd = cuda_ln.layer_norm_channels_first_forward(on(x), on(w), on(b), 1e-6)
    expected = cpu_ln.layer_norm_channels_first_forward_reference(x, w, b, 1e-6)
    for actual, wanted in zip((y, mean, rstd), expected, strict=False):
        assert_close(actual, wanted, dtype)
    grads = cuda_ln.layer_norm_channels_first_backward(on(dy), on(x), on(w), mean, rstd)
    for actual, wanted in zip(
        grads,
        cpu_ln.layer_norm_channels_first_backward_reference(dy, x, w, expected[1], expected[2]),
        strict=False,
    ):
        assert_close(actual, wanted, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@settings(max_examples=5)
@given(
    shape=st.tuples(st.integers(2, 4), st.integers(1, 9), st.integers(1, 6), st.integers(1, 40)),
    channels_last=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm(on, training, dtype, shape, channels_last, affine, seed):
    rng = np.random.default_rng(seed)
    channels = shape[-1] if channels_last else shape[1]
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    w, b = rng.standard_normal((2, channels)).astype(dtype) if affine else (None, None)
    dy = rng.standard_normal(shape).astype(dtype)
    if training:
        mean, var = cuda_bn.batch_norm_statistics(on(x), channels_last)
        mean_ref, var_ref = cpu_bn.batch_norm_statistics_reference(x, channels_last)
        assert_close(mean, mean_ref, dtype)
        assert_close(var, var_ref, dtype)
    else:
        mean_ref, var_ref = (
            rng.standard_normal(channels).astype(dtype),
            rng.uniform(0.5, 2, channels).astype(dtype),
        )
    rstd = (1 / np.sqrt(var_ref.astype(np.float64) + 1e-5)).astype(dtype)
    assert_close(
        cuda_bn.batch_norm_normalize(on(x), on(mean_ref), on(rstd), on(w), on(b), channels_last),
        cpu_bn.batch_norm_normalize_reference(x, mean_ref, rstd, w, b, channels_last),
        dtype,
    )
    grads = cuda_bn.batch_norm_backward(
        on(dy), on(x), on(w), on(mean_ref), on(rstd), training, channels_last, affine
    )
    wanted = cpu_bn.batch_norm_backward_reference(dy, x, w, mean_ref, rstd, training, channels_last, affine)
    for actual, expected_grad in zip(grads, wanted, strict=False):
        assert (actual is None) == (expected_grad is None)
        if actual is not None:
            assert_close(actual, expected_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kernel, stride, padding",
    [((3, 3), (2, 2), (1, 1)), ((2, 2), (2, 2), (0, 0)), ((3, 2), (1, 2), (1, 0)), ((4, 4), (3, 1), (2, 1))],
)
@settings(max_examples=4)
@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(4, 9), st.integers(4, 9)),
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_max_pool2d(on, dtype, kernel, stride, padding, shape, ties, seed):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(
        dtype
    )  # ties: shared maxima
    y, winner = cuda_mp.max_pool2d_forward(on(x), kernel, stride, padding)
    y_ref, winner_ref = cpu_mp.max_pool2d_forward_reference(x, kernel, stride, padding)
    assert_close(y, y_ref, dtype)
    np.testing.assert_array_equal(to_numpy(winner), winner_ref)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    assert_close(
        cuda_mp.max_pool2d_backward(on(dy), winner, x.shape, kernel, stride, padding),
        cpu_mp.max_pool2d_backward_reference(dy, winner_ref, x.shape, kernel, stride, padding),
        dtype,
    )


GEOMETRIES = [(7, 1, 3), (3, 1, 1), (3, 2, 1), (2, 2, 0), (4, 4, 0), (5, (2, 1), (0, 2)), (1, 1, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels_last", [True, False], ids=["nhwc", "nchw"])
@pytest.mark.parametrize("kernel,stride,padding", GEOMETRIES)
@settings(max_examples=3)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 6),
    h=st.integers(7, 12),
    w=st.integers(7, 12),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_depthwise_conv2d(on, channels_last, kernel, stride, padding, dtype, n, c, h, w, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((c, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if bias else None
    if channels_last:
        x, weight = (
            x.transpose(0, 2, 3, 1),
            weight.transpose(1, 2, 0),
        )  # non-contiguous views, as the op gives
        forward, backward = cuda_dw.depthwise_conv2d_nhwc_forward, cuda_dw.depthwise_conv2d_nhwc_backward
        forward_ref = cpu_dw.depthwise_conv2d_nhwc_forward_reference
        backward_ref = cpu_dw.depthwise_conv2d_nhwc_backward_reference
    else:
        forward, backward = cuda_dw.depthwise_conv2d_nchw_forward, cuda_dw.depthwise_conv2d_nchw_backward
        forward_ref = cpu_dw.depthwise_conv2d_nchw_forward_reference
        backward_ref = cpu_dw.depthwise_conv2d_nchw_backward_reference
    expected = forward_ref(x, weight, b, stride, padding)
    assert_close(forward(on(x), on(weight), on(b), stride, padding), expected, dtype)
    grad_out = rng.standard_normal(expected.shape).astype(dtype)
    grads = backward(on(x), on(weight), on(grad_out), stride, padding, bias)
    for actual, wanted in zip(grads, backward_ref(x, weight, grad_out, stride, padding, bias), strict=False):
        assert (actual is None) == (wanted is None)
        if actual is not None:
            assert_close(actual, wanted, dtype)


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
def test_cross_entropy(on, soft, reduction, dtype, n, k, smoothing, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * 4).astype(dtype)
    if soft:
        target = rng.random((n, k)).astype(dtype)
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, k, n)
        target[rng.random(n) < 0.2] = -100  # ignored samples
    loss, probs = cuda_ce.cross_entropy_forward(on(z), on(target), smoothing, reduction)
    expected_loss, expected_probs = cpu_ce.cross_entropy_forward_reference(z, target, smoothing, reduction)
    np.testing.assert_allclose(to_numpy(loss), expected_loss, **TOLERANCE[dtype])  # nan when all ignored
    assert_close(probs, expected_probs, dtype)
    grad_loss = rng.standard_normal(n).astype(dtype) if reduction == "none" else np.asarray(1.7, dtype)
    assert_close(
        cuda_ce.cross_entropy_backward(on(grad_loss), probs, on(target), smoothing, reduction),
        cpu_ce.cross_entropy_backward_reference(grad_loss, expected_probs, target, smoothing, reduction),
        dtype,
    )


def test_cross_entropy_rejects_a_class_out_of_range(on):
    with pytest.raises(IndexError, match=r"1 target\(s\) out of range \[0, 3\)"):
        cuda_ce.cross_entropy_forward(on(np.zeros((2, 3), np.float32)), on(np.array([0, 3])))


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=5)
@given(size=st.integers(1, 600), step=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_adamw_step(on, dtype, size, step, seed):
    rng = np.random.default_rng(seed)
    p, g, m = rng.standard_normal((3, size)).astype(dtype)
    v = rng.random(size).astype(dtype)
    hyper = (3e-3, 0.9, 0.999, 1e-8, 0.05, step)
    state = [on(a.copy()) for a in (p, g, m, v)]
    cuda_adamw.adamw_update(*state, *hyper)
    expected = [a.copy() for a in (p, g, m, v)]
    adamw_update_reference(*expected, *hyper)
    for actual, wanted in zip(state, expected, strict=False):
        assert_close(actual, wanted, dtype)


# -- the ops and a model on the CUDA path ----------------------------------------------------------------


def test_dispatch_picks_the_cuda_kernels_for_gpu_arrays_or_in_the_emulator():
    x = np.zeros(3, np.float32)
    assert dispatch.kernels("gelu", x).path == "numba"
    with dispatch.emulate_cuda():
        assert dispatch.kernels("gelu", x).path == "cuda"
        assert dispatch.kernels("gelu", x).gelu_forward is cuda_gelu.gelu_forward
        with dispatch.use_reference():
            assert dispatch.kernels("gelu", x).gelu_forward is cpu_gelu.gelu_forward_reference


@needs_compiler
def test_gradcheck_of_the_ops_on_the_cuda_path():
    rng = np.random.default_rng(0)

    def leaf(*shape):
        return ag.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)

    x, b = leaf(2, 3, 6, 5), leaf(3)
    labels = ag.tensor(np.array([1, 0, 2, 1]))
    with dispatch.emulate_cuda():
        assert ag.gradcheck(
            lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3), [x, leaf(3, 1, 3, 3), b]
        )
        assert ag.gradcheck(lambda x, w, b: F.layer_norm_channels_first(x, w, b, eps=1e-6), [x, leaf(3), b])
        assert ag.gradcheck(lambda x: F.gelu(x), [leaf(4, 5)])
        assert ag.gradcheck(lambda z: F.cross_entropy(z, labels, label_smoothing=0.1), [leaf(4, 3)])
        assert ag.gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), [leaf(3, 4), leaf(4), leaf(4)])
        assert ag.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, leaf(3), b])
        assert ag.gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
        assert ag.gradcheck(
            lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, channels_last=True),
            [leaf(2, 3, 4), leaf(4), leaf(4)],
        )


def _training_step(path, **model_options):
    """One AdamW step of a small ConvNeXt; returns the loss, the gradients and the updated parameters."""
    from tinyconvnext.variants import create_model

    ag_random.manual_seed(0)
    model = create_model("convnext_cifar_atto", num_classes=10, **model_options)
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal((3, 3, 32, 32)).astype(np.float32))
    y = ag.tensor(rng.integers(0, 10, 3))
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    with dispatch.emulate_cuda() if path == "cuda" else contextlib.nullcontext():
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        assert loss.grad_fn.kernels.path == path
        loss.backward()
        grads = [p.grad.data.copy() for p in model.parameters()]
        optimizer.step()
    return float(loss.item()), grads, [p.data.copy() for p in model.parameters()]


@needs_compiler
@pytest.mark.parametrize(
    "model_options",
    [{}, {"norm_layer": "batch", "stem_type": "deep", "layer_scale_init_value": 0.1}],
    ids=["layer_norm", "batch_norm-deep_stem"],
)
def test_a_convnext_training_step_on_the_cuda_path_equals_the_numba_path(model_options):
    loss_cuda, grads_cuda, params_cuda = _training_step("cuda", **model_options)
    loss_numba, grads_numba, params_numba = _training_step("numba", **model_options)
    assert loss_cuda == pytest.approx(loss_numba, rel=1e-6)
    # With BatchNorm, a bias in front of a BatchNorm has (nearly) no gradient: BN subtracts any shift of
    # its input. Such gradients are rounding noise: in float32, BN's backward leaves an error of about
    # 1e-7 of the model's largest gradient on every gradient, which only the smallest ones notice.
    scale = max(np.abs(b).max() for b in grads_numba)
    batch_norm = model_options.get("norm_layer") == "batch"
    noise = [batch_norm and np.abs(b).max() < 1e-5 * scale for b in grads_numba]
    assert sum(noise) < len(noise) // 4
    for a, b in zip(grads_cuda, grads_numba, strict=False):
        np.testing.assert_allclose(
            a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max() + (1e-7 * scale if batch_norm else 0)
        )
    # Adam's first step is lr * g / (|g| + eps): about lr * sign(g), so tiny gradients that differ in
    # their last bits may move a weight by a fraction of lr (1e-3) differently. Anything else is a bug.
    for a, b, is_noise in zip(params_cuda, params_numba, noise, strict=False):
        if not is_noise:  # a noise gradient's sign, and so its Adam step, is arbitrary
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
