r"""Opt-in: a real official checkpoint, when TINYCONVNEXT_OFFICIAL_CKPT names one (they cannot be
downloaded here).

    TINYCONVNEXT_OFFICIAL_CKPT=convnext_tiny_1k_224_ema.pth [TINYCONVNEXT_OFFICIAL_MODEL=convnext_tiny] \
        pytest tests/model

Compares our logits with an independent PyTorch forward of the same weights, and checks top-1 on a few
Imagenette validation images (Imagenette's ten classes are ImageNet classes).
"""

import io
import os
import tarfile

import numpy as np
import pytest
import torch
from conftest import shared_data_dir
from PIL import Image
from torch_convnext import TorchConvNeXt

import autograd as ag
import tinyconvnext
from tinyconvnext.imagenet import wnid_to_index
from tinyconvnext.images import eval_transform, to_rgb
from tinyconvnext.weights import num_classes_of, read_weights, variants_that_fit

CHECKPOINT = os.environ.get("TINYCONVNEXT_OFFICIAL_CKPT")
pytestmark = pytest.mark.skipif(
    not CHECKPOINT,
    reason="set TINYCONVNEXT_OFFICIAL_CKPT to an official ConvNeXt .pth (or timm's .safetensors)",
)


def _variant(state):
    """TINYCONVNEXT_OFFICIAL_MODEL, else the variant whose names and shapes the checkpoint has."""
    if os.environ.get("TINYCONVNEXT_OFFICIAL_MODEL"):
        return os.environ["TINYCONVNEXT_OFFICIAL_MODEL"]
    fits = [name for name, _ in variants_that_fit(state) if "_ols" not in name]
    if not fits:
        pytest.fail(f"{CHECKPOINT} fits no variant with the paper's stem: set TINYCONVNEXT_OFFICIAL_MODEL")
    return fits[0]


@pytest.fixture(scope="module")
def models():
    state = read_weights(CHECKPOINT)  # an official .pth, or timm's model.safetensors (renamed)
    name = _variant(state)
    ours = tinyconvnext.create_model(name, num_classes=num_classes_of(state), weights=CHECKPOINT).eval()
    config = tinyconvnext.VARIANTS[name]
    reference = TorchConvNeXt(num_classes=num_classes_of(state), depths=config["depths"], dims=config["dims"])
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return ours, reference.eval()


def test_real_checkpoint_matches_pytorch(models):
    ours, reference = models
    images = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with ag.no_grad():
        our_logits = ours(images).numpy()
    with torch.no_grad():
        torch_logits = reference(torch.from_numpy(images)).numpy()
    assert np.abs(our_logits - torch_logits).max() <= 1e-4 * max(1.0, np.abs(torch_logits).max())


def test_real_checkpoint_classifies_imagenette(models):
    ours, _ = models
    if ours.num_classes != 1000:
        pytest.skip("top-1 on ImageNet classes needs a 1k head")
    data = shared_data_dir()
    archive = data and data / "imagenette2-160.tgz"
    if not archive or not archive.exists():
        pytest.skip("Imagenette (imagenette2-160.tgz) not found: set TINYCONVNEXT_DATA")
    index = wnid_to_index()
    images, labels, per_class = [], [], {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[1] == "val" and member.isfile() and per_class.get(parts[2], 0) < 2:
                image = Image.open(io.BytesIO(tar.extractfile(member).read()))
                images.append(eval_transform(to_rgb(image)))
                labels.append(index[parts[2]])
                per_class[parts[2]] = per_class.get(parts[2], 0) + 1
            if len(labels) == 20:
                break
    with ag.no_grad():
        predictions = ours(np.stack(images)).numpy().argmax(axis=1)
    assert (predictions == np.array(labels)).mean() >= 0.8
