"""download(): file:// URLs, checksums, and no partial file under the final name after any failure."""

import hashlib
import io
import urllib.request
from pathlib import Path

import pytest

from tinyconvnext.data import download as download_module
from tinyconvnext.data.download import DownloadError, cache_dir, download, file_digest
from tinyconvnext.data.errors import ChecksumError

PAYLOAD = bytes(range(256)) * 9000  # 2.2 MiB: more than one read block
PAYLOAD_LENGTH = len(PAYLOAD)


@pytest.fixture
def served(tmp_path) -> Path:
    source = tmp_path / "server" / "payload.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    return source


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYCONVNEXT_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv("TINYCONVNEXT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "tinyconvnext"


def test_download_verifies_and_renames(served, tmp_path, capsys):
    destination = tmp_path / "out" / "payload.bin"
    result = download(
        served.as_uri(),
        destination,
        md5=hashlib.md5(PAYLOAD).hexdigest(),
        sha256=hashlib.sha256(PAYLOAD).hexdigest().upper(),
    )
    assert result == destination and destination.read_bytes() == PAYLOAD
    assert leftovers(destination.parent) == ["payload.bin"]
    assert "payload.bin" in capsys.readouterr().err  # the progress bar
    assert file_digest(destination, "sha256") == hashlib.sha256(PAYLOAD).hexdigest()


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_checksum_mismatch_leaves_no_file(served, tmp_path, algorithm):
    destination = tmp_path / "out" / "payload.bin"
    wrong = "0" * (32 if algorithm == "md5" else 64)
    with pytest.raises(ChecksumError) as error:
        download(served.as_uri(), destination, progress=False, **{algorithm: wrong})
    message = str(error.value)
    actual = hashlib.new(algorithm, PAYLOAD).hexdigest()
    assert str(destination) in message and wrong in message and actual in message
    assert leftovers(destination.parent) == []


def test_existing_file_is_kept_or_replaced(served, tmp_path):
    destination = tmp_path / "payload.bin"
    destination.write_bytes(PAYLOAD)
    digest = hashlib.md5(PAYLOAD).hexdigest()
    assert download((tmp_path / "nowhere").as_uri(), destination, md5=digest, progress=False) == destination
    destination.write_bytes(b"stale")
    download(served.as_uri(), destination, md5=digest, progress=False)
    assert destination.read_bytes() == PAYLOAD


def test_missing_source(tmp_path):
    with pytest.raises(DownloadError, match="cannot download file://"):
        download((tmp_path / "nowhere.bin").as_uri(), tmp_path / "out" / "x.bin", progress=False)
    assert leftovers(tmp_path / "out") == []


class FailingResponse(io.BytesIO):
    """A response that delivers one block and then fails the way a dropped connection or Ctrl-C does."""

    def __init__(self, failure, length=PAYLOAD_LENGTH):
        super().__init__(PAYLOAD)
        self.failure, self.calls = failure, 0
        self.headers = {"Content-Length": str(length)}

    def read(self, size=-1):
        self.calls += 1
        if self.calls > 1 and self.failure is not None:
            raise self.failure
        return super().read(size)


@pytest.mark.parametrize("failure", [ConnectionResetError("connection reset"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch, failure):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FailingResponse(failure))
    destination = tmp_path / "out" / "payload.bin"
    with pytest.raises(DownloadError if isinstance(failure, OSError) else KeyboardInterrupt):
        download("https://example.invalid/payload.bin", destination, progress=False)
    assert leftovers(destination.parent) == []


def test_short_download_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout: FailingResponse(None, length=len(PAYLOAD) + 10)
    )
    with pytest.raises(DownloadError, match=f"ended after {len(PAYLOAD)} of {len(PAYLOAD) + 10} bytes"):
        download("https://example.invalid/payload.bin", tmp_path / "payload.bin", progress=False)
    assert leftovers(tmp_path) == []


def test_module_is_reachable_by_its_name():
    assert download_module.download is download
