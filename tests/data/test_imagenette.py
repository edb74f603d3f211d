"""Imagenette readers on a tiny ImageFolder tree (greyscale, CMYK and corrupt JPEGs), archives and folders."""

import io

import numpy as np
import pytest
from data_builders import NETTE_FILES, make_tar, md5, write_imagenette_folder
from PIL import Image

from tinyconvnext.data import imagenette
from tinyconvnext.data.errors import DataError, DataNotFoundError
from tinyconvnext.data.imagenette import find_imagenette, list_imagenette, load_imagenette, read_imagenette
from tinyconvnext.images import resize_short_side, to_rgb

SIZE = 16
GOOD = sorted(name for name, kind in NETTE_FILES if kind != "corrupt")


def expected_image(folder, name, size=SIZE):
    with Image.open(io.BytesIO((folder / name).read_bytes())) as image:
        image.load()
        return np.asarray(resize_short_side(to_rgb(image), size))


def check(data, folder, size=SIZE):
    assert list(data.train.names) + list(data.val.names) == GOOD
    assert data.skipped == ("train/n02102040/broken.JPEG",)
    assert data.train.labels.tolist() == [0, 0, 1, 9] and data.val.labels.tolist() == [0, 9]
    assert data.train.labels.dtype == np.int64 and data.train.index.shape == (4, 3)
    for images in (data.train, data.val):
        for i, name in enumerate(images.names):
            image = images[i]
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            assert min(image.shape[:2]) == size
            np.testing.assert_array_equal(image, expected_image(folder, name, size), err_msg=name)
    assert data.classes[9] == "parachute" and data.wnids[0] == "n01440764"


@pytest.mark.parametrize("container", ["folder", "tgz", "tar.xz"])
def test_read_every_container(tmp_path, container):
    folder = write_imagenette_folder(tmp_path / "src")
    source = folder if container == "folder" else make_tar(folder, tmp_path / f"imagenette2-160.{container}")
    with pytest.warns(
        UserWarning, match=r"skipped 1 unreadable image\(s\) of 7: train/n02102040/broken.JPEG \("
    ):
        data = read_imagenette(source, SIZE, workers=1, progress=False, check_counts=False)
    check(data, folder)


def test_two_worker_processes_give_the_same_arrays(tmp_path):
    folder = write_imagenette_folder(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        data = read_imagenette(
            make_tar(folder, tmp_path / "imagenette2-160.tgz"),
            24,
            workers=2,
            progress=True,
            check_counts=False,
        )
    check(data, folder, size=24)


def test_official_counts_are_checked(tmp_path):
    archive = make_tar(write_imagenette_folder(tmp_path / "src"), tmp_path / "imagenette2-160.tgz")
    with (
        pytest.warns(UserWarning),
        pytest.raises(DataError, match=r"imagenette2-160.tgz: found 5 train and 2 val images, expected 9469"),
    ):
        read_imagenette(archive, SIZE, workers=1, progress=False)


def test_truncated_archive(tmp_path):
    archive = make_tar(write_imagenette_folder(tmp_path / "src"), tmp_path / "imagenette2-160.tgz")
    archive.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"imagenette2-160.tgz: truncated or corrupt archive"):
        read_imagenette(archive, SIZE, workers=1, progress=False, check_counts=False)


def test_unknown_class_folder(tmp_path):
    folder = write_imagenette_folder(tmp_path)
    (folder / "val" / "n12345678").mkdir()
    (folder / "val" / "n12345678" / "x.JPEG").write_bytes(
        (folder / "val" / "n03888257" / "f.JPEG").read_bytes()
    )
    with pytest.raises(DataError, match=r"val/n12345678/x.JPEG is in class folder n12345678"):
        read_imagenette(folder, SIZE, workers=1, progress=False, check_counts=False)


def test_cache(tmp_path, monkeypatch, isolated_cache):
    folder = write_imagenette_folder(tmp_path / "data")
    make_tar(folder, tmp_path / "data" / "imagenette2-160.tgz")
    decodes = []
    real_decode = imagenette._decode_into
    monkeypatch.setattr(imagenette, "_decode_into", lambda *a: decodes.append(a) or real_decode(*a))
    options = dict(workers=1, progress=False, check_counts=False)
    with pytest.warns(UserWarning, match="broken.JPEG"):
        first = load_imagenette(tmp_path / "data" / "imagenette2-160.tgz", SIZE, **options)
    second = load_imagenette(tmp_path / "data" / "imagenette2-160.tgz", SIZE, **options)
    mapped = load_imagenette(tmp_path / "data" / "imagenette2-160.tgz", SIZE, mmap=True, **options)
    assert len(decodes) == 1
    for data in (first, second, mapped):
        check(data, folder)
    assert isinstance(mapped.train.pixels, np.memmap)
    assert not list(isolated_cache.rglob(".*"))  # no temporary files left
    with pytest.warns(UserWarning):
        load_imagenette(tmp_path / "data" / "imagenette2-160.tgz", 20, **options)  # another size: decoded
    assert len(decodes) == 2


def test_find_prefers_the_smallest_archive_that_needs_no_upsampling(tmp_path, monkeypatch):
    assert find_imagenette(tmp_path) is None
    for name in ("imagenette2-160.tgz", "imagenette2-320.tar.xz", "imagenette2.tgz"):
        (tmp_path / name).write_bytes(b"")
    assert find_imagenette(tmp_path, 160) == tmp_path / "imagenette2-160.tgz"
    assert find_imagenette(tmp_path, 224) == tmp_path / "imagenette2-320.tar.xz"
    assert find_imagenette(tmp_path, 400) == tmp_path / "imagenette2.tgz"
    assert find_imagenette(tmp_path, 160, variant="full") == tmp_path / "imagenette2.tgz"
    (tmp_path / "imagenette2-160").mkdir()
    monkeypatch.setenv("TINYCONVNEXT_DATA", str(tmp_path))
    assert find_imagenette() == tmp_path / "imagenette2-160"  # a folder needs no decompression


def test_download_when_nothing_is_found(tmp_path, monkeypatch, isolated_cache):
    archive = make_tar(write_imagenette_folder(tmp_path / "src"), tmp_path / "server" / "imagenette2-160.tgz")
    with pytest.raises(DataNotFoundError, match="imagenette2-160.tgz"):
        load_imagenette(tmp_path / "empty")
    monkeypatch.setitem(imagenette.URLS, "160", archive.as_uri())
    with pytest.warns(UserWarning, match="broken.JPEG"):
        data = load_imagenette(
            tmp_path / "empty", SIZE, download=True, workers=1, progress=False, check_counts=False
        )
    assert data.source == isolated_cache / "imagenette2-160.tgz" and md5(data.source) == md5(archive)
    assert len(data.train) == 4


def test_list_without_decoding(tmp_path):
    folder = write_imagenette_folder(tmp_path / "src")
    expected = {split: sorted(n for n, _ in NETTE_FILES if n.startswith(split)) for split in ("train", "val")}
    assert list_imagenette(folder) == expected
    assert list_imagenette(make_tar(folder, tmp_path / "imagenette2-160.tar.xz")) == expected
