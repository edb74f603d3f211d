"""The real data sets, when present: $TINYCONVNEXT_DATA, else ../shared/data beside the repository.

CIFAR-10 is decoded once (about 11 s from the .tar.xz) into a temporary cache, then loaded from it.
Imagenette is only listed, not decoded (decoding all 13,394 JPEGs takes longer than a test should).
"""

import numpy as np
import pytest
from conftest import shared_data_dir

from tinyconvnext.data import cifar, imagenette
from tinyconvnext.data.cifar import find_cifar10, load_cifar10
from tinyconvnext.data.imagenette import find_imagenette, list_imagenette

DATA = shared_data_dir()
CIFAR = find_cifar10(DATA) if DATA else None
NETTE = find_imagenette(DATA, variant="160") if DATA else None

# Published reference statistics of the CIFAR-10 training set (per channel, pixels scaled to [0, 1]).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)


@pytest.mark.skipif(CIFAR is None, reason="CIFAR-10 not found: set TINYCONVNEXT_DATA (or ../shared/data)")
def test_real_cifar10(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYCONVNEXT_CACHE", str(tmp_path / "cache"))
    data = load_cifar10(CIFAR, progress=False)
    assert data.train_images.shape == (50_000, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10_000, 32, 32, 3)
    assert np.bincount(data.train_labels).tolist() == [5_000] * 10
    assert np.bincount(data.test_labels).tolist() == [1_000] * 10
    assert data.classes == cifar.CLASSES
    mean = data.train_images.reshape(-1, 3).mean(axis=0) / 255.0
    np.testing.assert_allclose(mean, CIFAR_MEAN, atol=1e-3)

    reads = []
    monkeypatch.setattr(cifar, "read_cifar10", lambda *a, **k: reads.append(a))
    cached = load_cifar10(CIFAR, progress=False)
    assert reads == []
    np.testing.assert_array_equal(cached.test_images, data.test_images)
    np.testing.assert_array_equal(cached.train_labels, data.train_labels)


@pytest.mark.skipif(
    NETTE is None, reason="imagenette2-160 not found: set TINYCONVNEXT_DATA (or ../shared/data)"
)
def test_real_imagenette_lists_every_image():
    names = list_imagenette(NETTE)
    assert len(names["train"]) == imagenette.EXPECTED_COUNTS["train"] == 9_469
    assert len(names["val"]) == imagenette.EXPECTED_COUNTS["val"] == 3_925
    wnids = {name.split("/")[1] for split in names.values() for name in split}
    assert sorted(wnids) == list(imagenette.WNIDS)
