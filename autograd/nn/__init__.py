"""Neural-network building blocks: Module and Parameter, layers, containers, initialisation.

The ops themselves live in ``autograd.nn.functional`` (as ``torch.nn.functional``).
"""

from .. import _identity  # noqa: F401  (first: stops if another autograd's __init__ ran)
from . import functional, init  # noqa: F401
from .containers import Identity, ModuleList, Sequential  # noqa: F401
from .layers import (
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    DepthwiseConv2dChannelsLast,  # noqa: F401
    Dropout,
    DropPath,
    Flatten,
    LayerNorm,
    Linear,
    MaxPool2d,
    PatchifyConv2dChannelsLast,
    ReLU,
)
from .module import Module, Parameter  # noqa: F401
from .precise_bn import recompute_batchnorm_statistics  # noqa: F401
