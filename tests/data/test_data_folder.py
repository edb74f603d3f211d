"""A folder that the user named (--data) must hold the data set: found there, or reported as not found
there with the names expected, never taken as a reason to download."""

import pytest
from data_builders import cifar_batches, make_tar, write_binary_folder, write_imagenette_folder

from tinyconvnext.data.cifar import require_cifar10
from tinyconvnext.data.errors import DataNotFoundError
from tinyconvnext.data.imagenette import require_imagenette


def test_cifar10_is_found_in_the_named_folder_or_reported_missing_there(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match=r"CIFAR-10 not found in .*empty: expected cifar-10-binary"):
        require_cifar10(tmp_path / "empty")
    folder = write_binary_folder(tmp_path / "data", cifar_batches())
    assert require_cifar10(tmp_path / "data") == folder  # a folder holding the batches folder
    assert require_cifar10(folder) == folder  # the batches folder itself
    archive = make_tar(folder, tmp_path / "packed" / "cifar-10-binary.tar.xz")
    assert require_cifar10(tmp_path / "packed") == archive
    assert require_cifar10(archive) == archive


def test_imagenette_is_found_in_the_named_folder_or_reported_missing_there(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataNotFoundError, match=r"Imagenette not found in .*empty: expected imagenette2-160.tgz"
    ):
        require_imagenette(tmp_path / "empty")
    folder = write_imagenette_folder(tmp_path / "src")
    assert require_imagenette(folder) == folder
    archive = make_tar(folder, tmp_path / "data" / "imagenette2-160.tgz")
    assert require_imagenette(tmp_path / "data") == archive
