"""The PyTorch twin of a run (bench/torch_twin_cifar.py) starts where train.py starts: the same network,
the same initial weights (the whitened stem's filters included) and so the same outputs."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import autograd as ag  # noqa: E402
from tinyconvnext.pipeline import ImageDataset, initial_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from torch_twin_cifar import build_twin  # noqa: E402

import train_cifar  # noqa: E402


def _dataset(n=64, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n)
    return ImageDataset(images, labels, images[:8], labels[:8], [str(i) for i in range(10)])


@pytest.mark.parametrize(
    "changes",
    [{"norm_layer": "layer", "stem_init": "default"}, {"norm_layer": "batch", "stem_init": "whiten"}],
    ids=["layernorm", "batchnorm-whitened"],
)
def test_twin_starts_from_the_network_train_py_builds(changes):
    config = dataclasses.replace(train_cifar.CIFAR_DEFAULTS, seed=3, drop_path=0.0, **changes)
    data = _dataset()
    twin = build_twin(config, data, num_classes=10)
    ours = initial_model(config, data, num_classes=10)  # train.py's network, fused, before its first step
    ours.eval(), twin.eval()
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with ag.no_grad():
        expected = ours(ag.tensor(x)).numpy()
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    stem = twin.downsample_layers[0][0].weight.detach().numpy()
    ours_stem = ours.downsample_layers[0][0].weight.numpy()
    np.testing.assert_array_equal(stem.reshape(ours_stem.shape), ours_stem)
