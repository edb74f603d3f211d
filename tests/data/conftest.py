"""Fixtures of the data-layer tests.

Every test here gets its own empty cache folder ($TINYCONVNEXT_CACHE) and no $TINYCONVNEXT_DATA, so nothing
from a real cache or data folder leaks in.
"""

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    # Appended, not prepended: "import conftest" must still find the top-level tests/conftest.py.
    sys.path.append(HERE)  # so the test files can import data_builders

from data_builders import CIFAR_FILES, RECORDS, md5  # noqa: E402

from tinyconvnext.data import cifar  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TINYCONVNEXT_CACHE", str(folder))
    monkeypatch.delenv("TINYCONVNEXT_DATA", raising=False)
    return folder


@pytest.fixture
def official_test_digests(monkeypatch):
    """Make a data set the tests built pass as the official one: ``accept(batches folder)`` publishes the
    MD5s of its .bin files, ``accept(pickle archive)`` the archive's MD5; the record count becomes RECORDS."""
    monkeypatch.setattr(cifar, "RECORDS_PER_FILE", RECORDS)

    def accept(source):
        source = Path(source)
        if source.is_dir():
            binary = {
                f"{n}.bin": md5(source / f"{n}.bin") for n in CIFAR_FILES if (source / f"{n}.bin").exists()
            }
            monkeypatch.setattr(cifar, "BINARY_FILE_MD5", binary)
        else:
            monkeypatch.setattr(cifar, "PYTHON_ARCHIVE_MD5", md5(source))
        return source

    return accept
