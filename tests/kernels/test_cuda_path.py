"""The CUDA path as a whole. The sources: each compiles with ``nvcc --ptx`` (skipped without nvcc), their
parameters, clear errors before any launch, and the wrappers' signatures are the CPU entry points'. The ops
and a model: which kernels an op takes (the scaled residual none: its body runs), gradcheck of the ops with
the CUDA kernels (run in the CPU emulator), and a whole ConvNeXt training step on the CUDA path equal to the
Numba path. Each CUDA kernel family against the op's own body: test_cuda_kernels.py.
"""

import contextlib
import importlib
import inspect
import shutil
import subprocess

import numpy as np
import pytest

import autograd as ag
from autograd import optim
from autograd import random as ag_random
from autograd.kernels import emulate_cuda, use_reference
from autograd.kernels.cpu import cross_entropy as cpu_ce
from autograd.kernels.cpu import gelu as cpu_gelu
from autograd.kernels.cuda import adamw as cuda_adamw
from autograd.kernels.cuda import batch_norm as cuda_bn
from autograd.kernels.cuda import cross_entropy as cuda_ce
from autograd.kernels.cuda import depthwise_conv2d as cuda_dw
from autograd.kernels.cuda import emulator
from autograd.kernels.cuda import gelu as cuda_gelu
from autograd.kernels.cuda import layer_norm as cuda_ln
from autograd.kernels.cuda import max_pool2d as cuda_mp
from autograd.kernels.cuda.common import channel_layout
from autograd.kernels.cuda.source import CudaSource, parse_params
from autograd.nn import functional as F
from autograd.nn.functional.residual import ScaledResidual

FAMILIES = [cuda_gelu, cuda_adamw, cuda_ln, cuda_bn, cuda_mp, cuda_dw, cuda_ce]
# The entry points of each family, reached by name (importlib + getattr) on the CPU or the CUDA side.
ENTRY_POINTS = {
    "gelu": "gelu_forward gelu_forward_with_slope gelu_backward gelu_backward_from_slope bias_gelu_forward"
    " bias_gelu_forward_with_slope gelu_backward_from_slope_with_bias_grad",
    "layer_norm": "layer_norm_forward layer_norm_backward layer_norm_channels_first_forward"
    " layer_norm_channels_first_backward",
    "batch_norm": "batch_norm_statistics batch_norm_normalize batch_norm_backward",
    "max_pool2d": "max_pool2d_forward max_pool2d_backward",
    "depthwise_conv2d": "depthwise_conv2d_nchw_forward depthwise_conv2d_nchw_backward"
    " depthwise_conv2d_nhwc_forward depthwise_conv2d_nhwc_backward",
    "cross_entropy": "cross_entropy_forward cross_entropy_backward",
    "adamw": "adamw_update",
}
DTYPES = [np.float32, np.float64]

needs_compiler = pytest.mark.skipif(
    emulator.compiler() is None, reason="no host C++ compiler for the CUDA emulator"
)


# -- the sources ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("family", FAMILIES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_cuda_source_compiles_with_nvcc(family, dtype, tmp_path):
    source = tmp_path / "kernels.cu"
    source.write_text(family.SOURCE.code_for(dtype))
    ptx_file = tmp_path / "kernels.ptx"
    command = ["nvcc", "--ptx", "-arch=sm_80", "-std=c++14", "-Werror", "all-warnings", "-o", str(ptx_file)]
    result = subprocess.run([*command, str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ptx = ptx_file.read_text()
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
        "depthwise_conv2d_backward_bias",
        "depthwise_conv2d_backward_input",
        "depthwise_conv2d_backward_weight",
        "depthwise_conv2d_forward",
    ]


@pytest.mark.parametrize("family", sorted(ENTRY_POINTS))
def test_the_cuda_wrappers_mirror_the_cpu_entry_points(family):
    cpu = importlib.import_module(f"autograd.kernels.cpu.{family}")
    cuda = importlib.import_module(f"autograd.kernels.cuda.{family}")
    for name in ENTRY_POINTS[family].split():
        on_cuda = inspect.signature(getattr(cuda, name)).parameters
        on_cpu = inspect.signature(getattr(cpu, name)).parameters
        assert list(on_cuda) == list(on_cpu), name  # the ops pass the arguments by position
        for parameter in on_cuda.values():  # a default on the CUDA side is the CPU side's default
            empty = parameter.empty
            assert parameter.default is empty or parameter.default == on_cpu[parameter.name].default, name
    assert not hasattr(cuda, "STEPS")  # one version per CUDA kernel; the steps live in the CPU chapter


def test_channel_layout_views_both_layouts_as_outer_channels_inner():
    assert channel_layout((6, 4), channels_last=True) == (6, 4, 1)
    assert channel_layout((2, 3, 5, 4), channels_last=True) == (30, 4, 1)
    assert channel_layout((2, 3, 5, 4), channels_last=False) == (2, 3, 20)
    assert channel_layout((2, 3), channels_last=False) == (2, 3, 1)


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


# -- the ops and a model on the CUDA path ----------------------------------------------------------------


def test_an_op_takes_the_cuda_kernels_for_gpu_arrays_or_in_the_emulator():
    x = ag.tensor(np.zeros(3, np.float32), requires_grad=True)
    assert F.gelu(x).grad_fn.kernels is cpu_gelu
    with emulate_cuda():
        assert F.gelu(x).grad_fn.kernels is cuda_gelu
        with use_reference():
            assert F.gelu(x).grad_fn.kernels is None  # the op's own body: the plain math


def test_the_scaled_residual_has_no_cuda_kernels_its_body_runs():
    """Its few element-wise multiplies and adds are CuPy's own kernels on the GPU: no CUDA family."""
    assert "cuda" not in ScaledResidual.fast_paths
    x = ag.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    gamma = ag.tensor(np.full(3, 0.5, np.float32), requires_grad=True)
    with emulate_cuda():
        out = F.residual_add(x, x, gamma)
    assert out.grad_fn.kernels is None
    np.testing.assert_array_equal(out.numpy(), np.full((2, 3), 1.5, np.float32))


@needs_compiler
def test_gradcheck_of_the_ops_on_the_cuda_path():
    rng = np.random.default_rng(0)

    def leaf(*shape):
        return ag.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)

    x, b = leaf(2, 3, 6, 5), leaf(3)
    labels = ag.tensor(np.array([1, 0, 2, 1]))
    with emulate_cuda():
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
    with emulate_cuda() if path == "cuda" else contextlib.nullcontext():
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        assert loss.grad_fn.kernels is (cuda_ce if path == "cuda" else cpu_ce)
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
