"""autograd: a small reverse-mode automatic differentiation engine on NumPy (CPU) and CuPy (GPU).

It knows nothing of ConvNeXt. Read it in this order: ``backend`` (arrays), ``tensor`` (Tensor),
``function`` (one op = forward + backward), ``graph`` (backward over the recorded graph), ``ops``
(the differentiable ops), ``gradcheck`` (proving them), then ``nn`` and ``optim``. The fast kernels come
last, as a chapter of their own: ``kernels`` (the one switch, and which op has which fast path), then
``kernels/cpu`` and ``kernels/cuda``.
"""

# What tinyconvnext.engine_check looks for: PyPI's autograd (HIPS) has the same name.
__engine__ = "tinyconvnext"

import numpy as _np

from . import memory, profiler  # noqa: F401
from .backend import cupy_available, get_array_module, get_default_device, set_default_device
from .creation import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .function import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .ops.elementwise import (
    abs,
    add,
    clip,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from .ops.matmul import matmul
from .ops.reduction import argmax, argmin, max, mean, min, sum, var
from .ops.shape import (
    broadcast_to,
    cat,
    concat,
    concatenate,
    expand,
    flatten,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from .ops.softmax import log_softmax, logsumexp, softmax
from .random import Generator, manual_seed
from .tensor import Tensor

clamp = clip

float16 = _np.dtype(_np.float16)
float32 = _np.dtype(_np.float32)
float64 = _np.dtype(_np.float64)
int32 = _np.dtype(_np.int32)
int64 = _np.dtype(_np.int64)
uint8 = _np.dtype(_np.uint8)
bool_ = _np.dtype(_np.bool_)

__version__ = "0.1.0"
