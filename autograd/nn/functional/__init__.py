"""``autograd.nn.functional`` (import as ``F``): the ops of ConvNeXt and its training, mirroring
``torch.nn.functional`` in names, arguments and semantics. Each op is a ``Function`` whose forward and
backward are its plain math; the ones with fast kernels name them in ``fast_paths`` (``autograd.kernels``).

| file | ops |
| --- | --- |
| ``conv.py`` | ``conv2d``; the depthwise op, and the channels-last depthwise and patchify convolutions |
| ``conv_im2col.py`` | convolution as matrix products: im2col for any conv, patchify for kernel == stride |
| ``fully_connected.py`` | ``linear``; ``linear_gelu`` (GELU fused after the product) |
| ``norm.py`` | ``layer_norm``, ``layer_norm_channels_first``, ``batch_norm`` |
| ``activation.py`` | ``gelu``, ``relu`` |
| ``regularization.py`` | ``dropout``, ``drop_path`` |
| ``residual.py`` | ``residual_add``: ``shortcut + drop_path(gamma * x)`` in one pass |
| ``pooling.py`` | ``avg_pool2d``, ``max_pool2d``, ``adaptive_avg_pool2d`` |
| ``loss.py`` | ``cross_entropy`` |
"""

from ...ops.softmax import log_softmax, softmax  # noqa: F401
from .activation import gelu, relu  # noqa: F401
from .conv import conv2d, depthwise_conv2d_channels_last, patchify_conv2d_channels_last  # noqa: F401
from .fully_connected import linear, linear_gelu  # noqa: F401
from .loss import cross_entropy  # noqa: F401
from .norm import batch_norm, layer_norm, layer_norm_channels_first  # noqa: F401
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
from .regularization import drop_path, dropout  # noqa: F401
from .residual import residual_add  # noqa: F401
