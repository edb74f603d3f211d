"""Reading tar archives of any compression, and finding data sets by their official names.

``tarfile.open(path, "r:*")`` detects gzip, bzip2 and xz (and plain tar) by content, so an official
``.tar.gz`` and a recompressed ``.tar.xz`` read the same way. A compressed archive cut short raises
``EOFError`` (or a zlib/lzma error) when its end is read; a tar cut inside a member raises
``tarfile.ReadError``. Every one of those becomes a ``DataError`` naming the archive, so a truncated
download never turns into a silently smaller data set. (A plain, uncompressed tar cut exactly between two
members cannot be told from a complete one: the readers also check the number of records they find.)
"""

from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

from .errors import DataError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar")

_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def is_archive(path) -> bool:
    return Path(path).is_file() and str(path).lower().endswith(ARCHIVE_SUFFIXES)


def archive_names(stem: str) -> list[str]:
    """``stem`` with every archive suffix: ``cifar-10-binary`` -> ``cifar-10-binary.tar.gz`` ..."""
    return [stem + suffix for suffix in ARCHIVE_SUFFIXES]


def iter_archive(
    path, wanted: Callable[[str], bool], progress: bool = False, description: str | None = None
) -> Iterator[tuple[str, bytes | None]]:
    """Yield ``(member name, contents)`` for each regular file of a tar archive, in archive order.

    Contents are read only for members where ``wanted(name)`` is true, else ``None`` (listing a
    compressed archive still decompresses it, but skips copying the bytes). The progress bar counts
    compressed bytes read from disk. A corrupt or truncated archive raises ``DataError`` naming it.
    """
    path = Path(path)
    try:
        with (
            open(path, "rb") as raw,
            tqdm(
                total=path.stat().st_size,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=description or path.name,
                disable=not progress,
            ) as bar,
        ):
            with tarfile.open(fileobj=CallbackIOWrapper(bar.update, raw, "read"), mode="r:*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    if not wanted(member.name):
                        yield member.name, None
                        continue
                    data = archive.extractfile(member).read()
                    if len(data) != member.size:
                        raise DataError(
                            f"{path}: member {member.name} is truncated: expected "
                            f"{member.size} bytes, found {len(data)}"
                        )
                    yield member.name, data
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such archive") from None
    except PermissionError:
        raise
    except _READ_ERRORS as error:
        raise DataError(f"{path}: truncated or corrupt archive ({type(error).__name__}: {error})") from None


def find_first(folders, names) -> Path | None:
    """The first existing ``folder/name`` over ``folders`` (in order) and ``names`` (in order).

    A folder that is itself one of the names is returned as is.
    """
    for folder in folders:
        if folder is None:
            continue
        folder = Path(folder).expanduser()
        if folder.name in names and folder.exists():
            return folder
        for name in names:
            candidate = folder / name
            if candidate.exists():
                return candidate
    return None
