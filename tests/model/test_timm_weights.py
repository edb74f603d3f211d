"""timm's ConvNeXt weights (the Hugging Face Hub's ``model.safetensors``) load into ours, and ours into timm.

Needs timm, which needs a torchvision built for the installed torch: in the project's environment (CPU
torch==2.13.0) PyPI's torchvision==0.28.0 is built against CUDA torch and fails to import, so these tests skip
there, with the import error as the reason. Run them where timm imports, e.g. a venv with torch==2.14.1,
torchvision==0.29.1 and timm. The name table is checked without timm too (test_safetensors.py).
"""

import numpy as np
import pytest
import torch

import autograd as ag
import tinyconvnext
from tinyconvnext.weights import load_weights, read_weights_file, save_safetensors

try:
    import timm
    from timm.models.convnext import checkpoint_filter_fn
except Exception as error:  # ImportError, or torchvision's RuntimeError beside a torch it was not built for
    pytest.skip(
        f"timm cannot be imported here ({type(error).__name__}: {error}); PyPI's torchvision 0.28.0, which "
        "timm needs, is built for CUDA torch and fails beside CPU torch==2.13.0 (see this file's docstring)",
        allow_module_level=True,
    )

from safetensors.torch import save_file  # noqa: E402

IMAGE_SIZE = 64  # every variant's stride is 32: two pixels per side in the last stage


def _random_timm(name, num_classes=10, seed=0):
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=num_classes).eval()
    with torch.no_grad():
        for (
            parameter
        ) in model.parameters():  # not the init's zero biases and 1e-6 gammas: every weight counts
            parameter.copy_(torch.randn_like(parameter) * 0.05 + (1.0 if parameter.ndim == 1 else 0.0) * 0.1)
    return model


def _logits(model, images):
    with ag.no_grad():
        return model.eval()(images).numpy()


@pytest.mark.parametrize("name", ["convnext_atto", "convnext_atto_ols", "convnext_tiny"])
def test_timm_safetensors_load_with_equal_logits(tmp_path, name):
    reference = _random_timm(name)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    ours = tinyconvnext.create_model(name, num_classes=10, weights=path)
    images = np.random.default_rng(1).standard_normal((2, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(_logits(ours, images), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["convnext_atto", "convnext_tiny"])
def test_our_safetensors_load_into_timm_through_its_filter(tmp_path, name):
    ag.manual_seed(2)
    ours = tinyconvnext.create_model(name, num_classes=10)
    for parameter in ours.parameters():
        parameter.data = parameter.data + np.float32(0.05) * np.random.default_rng(3).standard_normal(
            parameter.shape
        ).astype(np.float32)
    path = save_safetensors(ours, tmp_path / "ours.safetensors")
    reference = timm.create_model(name, pretrained=False, num_classes=10).eval()
    from safetensors.torch import load_file

    reference.load_state_dict(checkpoint_filter_fn(load_file(str(path)), reference))
    images = np.random.default_rng(4).standard_normal((2, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(_logits(ours, images), expected, atol=1e-4, rtol=1e-4)


def test_timm_variant_of_another_size_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(
        {k: v.contiguous() for k, v in _random_timm("convnext_femto_ols").state_dict().items()}, str(path)
    )
    assert read_weights_file(path).num_classes == 10
    with pytest.raises(ValueError, match=r"\(the file holds convnext_femto_ols weights with 10 classes\)"):
        load_weights(tinyconvnext.create_model("convnext_atto", num_classes=10), path)
