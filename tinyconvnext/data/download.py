"""Downloading data sets: stream to a temporary file, verify the checksum, then rename.

A download is written to a hidden temporary name in the destination's own folder (``.NAME.XXXX.part``) and
only renamed to its final name with ``os.replace`` once every byte has arrived and the checksum matches.
The rename is atomic within one file system, so the final name either holds a complete, verified file or
does not exist: an interrupted download (Ctrl-C, lost connection, full disk) or a checksum mismatch leaves
nothing under it, and the next run starts over instead of trusting half a file.

Files are downloaded into ``cache_dir()``: ``$TINYCONVNEXT_CACHE`` if set, else ``~/.cache/tinyconvnext``.
Any URL that ``urllib`` opens works, ``file://`` included (the tests use it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .errors import ChecksumError

CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A download that could not be completed (network error, bad URL, short read)."""


def cache_dir() -> Path:
    """Where downloads and decoded arrays go: ``$TINYCONVNEXT_CACHE``, else ``~/.cache/tinyconvnext``."""
    configured = os.environ.get("TINYCONVNEXT_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "tinyconvnext"


def default_data_dir(data_dir=None) -> Path | None:
    """Where to look for data sets: ``data_dir`` if given, else ``$TINYCONVNEXT_DATA`` if set, else None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    configured = os.environ.get("TINYCONVNEXT_DATA")
    return Path(configured).expanduser() if configured else None


def file_digest(path, algorithm: str = "md5") -> str:
    """The hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_digests(md5, sha256) -> dict[str, str]:
    return {name: value.lower() for name, value in (("md5", md5), ("sha256", sha256)) if value}


def check_digests(path, md5: str | None = None, sha256: str | None = None, name=None) -> None:
    """Raise ``ChecksumError`` naming the file, the expected and the actual digest if one differs."""
    for algorithm, expected in _expected_digests(md5, sha256).items():
        actual = file_digest(path, algorithm)
        if actual != expected:
            raise ChecksumError(
                f"{name or path}: {algorithm.upper()} mismatch: expected {expected}, "
                f"found {actual} (the file is corrupt, incomplete or not the published one)"
            )


def _fetch(url: str, out, digests: dict, label: str, progress: bool) -> None:
    """Stream ``url`` into the open file ``out``, updating ``digests``, with a progress bar named ``label``;
    raise ``DownloadError`` if it cannot be opened, fails part way or ends short of its Content-Length."""
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (OSError, ValueError) as error:
        raise DownloadError(f"cannot download {url}: {error}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except OSError as error:
                    raise DownloadError(f"download of {url} failed after {received} bytes: {error}") from None
                if not block:
                    break
                out.write(block)
                for digest in digests.values():
                    digest.update(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received != total:
        raise DownloadError(f"download of {url} ended after {received} of {total} bytes")


def _check_fetched(url: str, destination: Path, expected: dict[str, str], digests: dict) -> None:
    """Raise ``ChecksumError`` if a digest of the downloaded bytes differs from its ``expected`` value."""
    for algorithm, value in expected.items():
        actual = digests[algorithm].hexdigest()
        if actual != value:
            raise ChecksumError(
                f"{destination} (from {url}): {algorithm.upper()} mismatch: expected "
                f"{value}, found {actual}; the download was discarded"
            )


def download(
    url: str, destination, md5: str | None = None, sha256: str | None = None, progress: bool = True
) -> Path:
    """Download ``url`` to ``destination`` and return its path.

    Args:
        url: any URL ``urllib.request.urlopen`` accepts (``https://``, ``file://`` ...).
        destination: the final file path; its folder is created if needed.
        md5, sha256: published hex digests to verify (either, both or neither).
        progress: show a tqdm progress bar.

    An existing destination whose digests match (or that has no digest to check) is kept and not
    downloaded again. On a checksum mismatch ``ChecksumError`` is raised and no file is left under
    ``destination``; any other failure raises ``DownloadError``, also leaving nothing behind.
    """
    destination = Path(destination)
    expected = _expected_digests(md5, sha256)
    if destination.is_file():
        try:
            check_digests(destination, md5, sha256)
            return destination
        except ChecksumError:
            pass  # a stale or damaged earlier file: download again and replace it
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    digests = {algorithm: hashlib.new(algorithm) for algorithm in expected}
    try:
        with os.fdopen(descriptor, "wb") as out:
            _fetch(url, out, digests, destination.name, progress)
            out.flush()
            os.fsync(out.fileno())
        _check_fetched(url, destination, expected, digests)
        os.replace(temporary, destination)
    except BaseException:  # KeyboardInterrupt included: never leave the partial file behind
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination
