"""CIFAR-10 readers on small archives in both official formats: layouts, checksums, damage, cache,
download."""

import os
import pickle

import numpy as np
import pytest
from data_builders import (
    CIFAR_FILES,
    RECORDS,
    cifar_batches,
    make_tar,
    md5,
    write_binary_folder,
    write_python_folder,
)

from tinyconvnext.data import cifar
from tinyconvnext.data.cifar import find_cifar10, load_cifar10, read_cifar10
from tinyconvnext.data.errors import ChecksumError, DataError, DataNotFoundError

WRITERS = {"binary": write_binary_folder, "python": write_python_folder}


def assert_matches(data, batches):
    train = [batches[name] for name in CIFAR_FILES[:5]]
    np.testing.assert_array_equal(data.train_images, np.concatenate([images for images, _ in train]))
    np.testing.assert_array_equal(data.train_labels, np.concatenate([labels for _, labels in train]))
    np.testing.assert_array_equal(data.test_images, batches["test_batch"][0])
    np.testing.assert_array_equal(data.test_labels, batches["test_batch"][1])
    assert data.train_images.dtype == np.uint8 and data.train_images.shape == (5 * RECORDS, 32, 32, 3)
    assert data.train_labels.dtype == np.int64 and data.test_labels.dtype == np.int64
    assert data.classes == cifar.CLASSES


def build(tmp_path, kind, container, batches):
    """The data set as a folder or archive, with its digests published (``official_test_digests``)."""
    folder = WRITERS[kind](tmp_path / "src", batches)
    if container == "folder":
        return folder
    stem = "cifar-10-binary" if kind == "binary" else "cifar-10-python"
    return make_tar(folder, tmp_path / f"{stem}.{container}")


@pytest.mark.parametrize("container", ["folder", "tar.gz", "tar.xz"])
@pytest.mark.parametrize("kind", ["binary", "python"])
def test_both_formats_in_every_container(tmp_path, official_test_digests, kind, container):
    batches = cifar_batches()
    folder = WRITERS[kind](tmp_path / "src", batches)
    official_test_digests(folder)
    source = folder if container == "folder" else make_tar(folder, tmp_path / f"cifar-10-{kind}.{container}")
    if kind == "python" and container != "folder":
        official_test_digests(source)
    assert_matches(read_cifar10(source, progress=False), batches)


def test_data_folder_holding_the_batches_folder(tmp_path, official_test_digests):
    batches = cifar_batches()
    official_test_digests(write_binary_folder(tmp_path, batches))
    assert_matches(read_cifar10(tmp_path), batches)


def test_pickle_archive_with_another_md5_is_not_unpickled(tmp_path, monkeypatch):
    archive = build(tmp_path, "python", "tar.gz", cifar_batches())
    unpickled = []
    monkeypatch.setattr(cifar, "_unpickle", lambda data, name: unpickled.append(name))
    with pytest.raises(ChecksumError) as error:
        read_cifar10(archive, progress=False)
    message = str(error.value)
    assert str(archive) in message and md5(archive) in message and cifar.PYTHON_ARCHIVE_MD5 in message
    assert "trust_archive=True" in message
    assert unpickled == []


def test_trust_archive_reads_a_pickle_archive_you_built(tmp_path):
    batches = cifar_batches()
    data = read_cifar10(build(tmp_path, "python", "tar.xz", batches), trust_archive=True, progress=True)
    assert_matches(data, batches)


def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "RECORDS_PER_FILE", RECORDS)
    folder = write_python_folder(tmp_path, cifar_batches())
    marker = tmp_path / "pwned"

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": RunsCode(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_2.*refusing to load global (posix|os)\.system"):
        read_cifar10(folder)
    assert not marker.exists()


def test_binary_file_with_another_md5(tmp_path, official_test_digests):
    folder = write_binary_folder(tmp_path, cifar_batches())
    official_test_digests(folder)
    damaged = bytearray((folder / "data_batch_3.bin").read_bytes())
    damaged[100] ^= 0xFF
    (folder / "data_batch_3.bin").write_bytes(bytes(damaged))
    with pytest.raises(ChecksumError) as error:
        read_cifar10(make_tar(folder, tmp_path / "cifar-10-binary.tar.gz"), progress=False)
    message = str(error.value)
    assert "cifar-10-binary.tar.gz" in message and "data_batch_3.bin" in message
    assert cifar.BINARY_FILE_MD5["data_batch_3.bin"] in message and md5(bytes(damaged)) in message


@pytest.mark.parametrize("suffix", ["tar.gz", "tar.xz"])
def test_truncated_archive(tmp_path, official_test_digests, suffix):
    folder = write_binary_folder(tmp_path / "src", cifar_batches())
    official_test_digests(folder)
    archive = make_tar(folder, tmp_path / f"cifar-10-binary.{suffix}")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{archive.name}: truncated or corrupt archive"):
        read_cifar10(archive, progress=False)


def test_record_count_and_size_are_checked(tmp_path, official_test_digests):
    folder = write_binary_folder(tmp_path, cifar_batches())
    official_test_digests(folder)
    # With the official checks off, a partial record is still an error ...
    (folder / "test_batch.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-10])
    with pytest.raises(DataError, match=r"test_batch.bin: 12282 bytes is not a whole number of 3073-byte"):
        read_cifar10(folder, trust_archive=True)
    # ... and a file with fewer records than the official count fails the count check.
    (folder / "test_batch.bin").write_bytes((folder / "data_batch_1.bin").read_bytes()[:-3073])
    with pytest.raises(DataError, match=rf"test_batch.bin: {RECORDS - 1} records, expected {RECORDS}"):
        cifar.decode_binary_batch((folder / "test_batch.bin").read_bytes(), "test_batch.bin")


def test_bad_label_and_missing_batch(tmp_path):
    batches = cifar_batches()
    batches["data_batch_4"][1][2] = 10
    folder = write_binary_folder(tmp_path, batches)
    with pytest.raises(DataError, match=r"data_batch_4.bin: record 2 has label 10, expected 0..9"):
        read_cifar10(folder, trust_archive=True)
    (folder / "data_batch_5.bin").unlink()
    with pytest.raises(DataError, match=r"missing data_batch_5.bin"):
        read_cifar10(folder, trust_archive=True)


def test_cache_second_load_does_not_read_the_archive(
    tmp_path, official_test_digests, monkeypatch, isolated_cache
):
    batches = cifar_batches()
    official_test_digests(write_binary_folder(tmp_path / "src", batches))
    make_tar(tmp_path / "src" / "cifar-10-batches-bin", tmp_path / "data" / "cifar-10-binary.tar.xz")
    reads = []
    real_read = cifar.read_cifar10
    monkeypatch.setattr(cifar, "read_cifar10", lambda *a, **k: reads.append(a) or real_read(*a, **k))

    first = load_cifar10(tmp_path / "data", progress=False)
    second = load_cifar10(tmp_path / "data", progress=False)
    mapped = load_cifar10(tmp_path / "data", mmap=True, progress=False)
    assert len(reads) == 1
    for data in (first, second, mapped):
        assert_matches(data, batches)
    assert isinstance(mapped.train_images, np.memmap)
    cached = sorted(p.name for p in isolated_cache.rglob("*") if p.is_file())
    assert cached == [
        "classes.npy",
        "manifest.json",
        "test_images.npy",
        "test_labels.npy",
        "train_images.npy",
        "train_labels.npy",
    ]

    # A changed source (new modification time) is decoded again.
    archive = tmp_path / "data" / "cifar-10-binary.tar.xz"
    os.utime(archive, ns=(archive.stat().st_atime_ns, archive.stat().st_mtime_ns + 10**9))
    load_cifar10(tmp_path / "data", progress=False)
    assert len(reads) == 2


def test_damaged_cache_is_decoded_again(tmp_path, official_test_digests, isolated_cache):
    batches = cifar_batches()
    official_test_digests(write_binary_folder(tmp_path, batches))
    load_cifar10(tmp_path, progress=False)
    (cached,) = isolated_cache.rglob("train_images.npy")
    cached.write_bytes(cached.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="damaged cache"):
        assert_matches(load_cifar10(tmp_path, progress=False), batches)
    assert_matches(load_cifar10(tmp_path, progress=False), batches)  # rewritten


def test_find_order_and_environment(tmp_path, monkeypatch, official_test_digests):
    assert find_cifar10(tmp_path) is None
    batches = cifar_batches()
    write_python_folder(tmp_path, batches)
    assert find_cifar10(tmp_path) == tmp_path / "cifar-10-batches-py"
    official_test_digests(write_binary_folder(tmp_path / "src", batches))
    make_tar(tmp_path / "src" / "cifar-10-batches-bin", tmp_path / "cifar-10-binary.tar.xz")
    assert find_cifar10(tmp_path) == tmp_path / "cifar-10-binary.tar.xz"  # binary before pickles
    monkeypatch.setenv("TINYCONVNEXT_DATA", str(tmp_path))
    assert find_cifar10() == tmp_path / "cifar-10-binary.tar.xz"
    assert_matches(load_cifar10(progress=False), batches)


def test_not_found_without_download(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"CIFAR-10 not found in .*empty.*download=True"):
        load_cifar10(tmp_path / "empty")


def test_download_when_nothing_is_found(tmp_path, monkeypatch, official_test_digests, isolated_cache):
    batches = cifar_batches()
    official_test_digests(write_binary_folder(tmp_path / "src", batches))
    archive = make_tar(tmp_path / "src" / "cifar-10-batches-bin", tmp_path / "server" / "archive.tar.gz")
    monkeypatch.setattr(cifar, "BINARY_URL", archive.as_uri())
    monkeypatch.setattr(cifar, "BINARY_ARCHIVE_MD5", md5(archive))
    data = load_cifar10(tmp_path / "empty", download=True, progress=False)
    assert_matches(data, batches)
    assert data.source == isolated_cache / "cifar-10-binary.tar.gz"
    assert md5(data.source) == md5(archive)
    assert find_cifar10(tmp_path / "empty") == data.source  # found in the cache next time

    monkeypatch.setattr(cifar, "BINARY_ARCHIVE_MD5", "0" * 32)
    data.source.unlink()
    with pytest.raises(ChecksumError, match="0" * 32):
        load_cifar10(tmp_path / "empty", download=True, progress=False)
    assert not data.source.exists()
