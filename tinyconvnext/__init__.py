"""tinyconvnext: ConvNeXt (Liu et al., 2022) built on the ``autograd`` engine.

import tinyconvnext
model = tinyconvnext.create_model("convnext_tiny", num_classes=1000)
logits = model(images)            # images: float32 (N, 3, 224, 224)
"""

from .engine_check import check_engine

check_engine()  # before anything imports the engine: PyPI's autograd has the same name

from .model import Block, ConvNeXt  # noqa: E402
from .resnet import ResNet  # noqa: E402
from .variants import RESNET_VARIANTS, VARIANTS, available_models, create_model  # noqa: E402

__version__ = "0.1.0"
