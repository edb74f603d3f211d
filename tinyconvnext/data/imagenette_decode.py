"""Decoding Imagenette's JPEGs in worker processes, straight into each split's ``.npy`` pixel file.

Decoding: each JPEG is decoded with Pillow, converted to RGB with ``images.to_rgb`` (242 of the 160 px
JPEGs are greyscale; ImageNet also has a few CMYK ones) and resized with ``images.resize_short_side`` so
that its short side is ``size`` (bicubic, aspect kept). Images keep their own shapes, so a split is stored
as one flat uint8 array of all pixels plus an (N, 3) int64 array of (offset, height, width): image i is
``pixels[offset:offset + h*w*3].reshape(h, w, 3)``. An image Pillow cannot decode is skipped and counted
(its error is returned in place of its shape), so one bad file does not stop the rest.

Speed: the main process reads the archive and hands chunks of JPEG bytes to worker processes (one per
core). Each worker writes the pixels it decodes straight into the split's ``.npy`` file, at offsets it
reserves from a counter shared by all processes, and sends back only (offset, height, width): sending the
1.3 GiB of pixels back through pipes, or writing them twice, made two processes slower than one. Memory
stays small even for the full-size archive.

The splits are numbered in the order of ``targets`` (``{split: (temporary path, first data byte)}``, from
``pixel_targets``), as the shared counters are; ``imagenette.py`` knows the data set's layout.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from ..images import resize_short_side, to_rgb
from .cache import temporary_beside, uint8_npy_header

CHUNK_IMAGES = 32


def decode_image(data: bytes, size: int) -> np.ndarray:
    """JPEG (or any Pillow format) bytes -> (H, W, 3) uint8 RGB with the short side ``size``."""
    with Image.open(BytesIO(data)) as image:
        image.load()
        return np.asarray(resize_short_side(to_rgb(image), size), dtype=np.uint8)


# The next free byte of each split's pixel file, shared by all decoding processes (see "Speed" above).
_next_free_byte = None  # multiprocessing.Array("q", len(targets))


def _share_counters(counters) -> None:
    global _next_free_byte
    _next_free_byte = counters


def _write_all(descriptor: int, data, position: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(descriptor, view, position)
        view, position = view[written:], position + written


def decode_chunk(items, size: int, targets) -> list:
    """Decode ``[(split, label, name, bytes)]`` into the files ``targets[split] = (path, first data byte)``;
    return ``[(split, label, name, offset, height, width, error)]``.

    Runs in the worker processes. An unreadable image gives its error instead of an exception, so one bad
    file does not stop the rest.
    """
    out, decoded = [], {split: [] for split in targets}
    for split, label, name, data in items:
        try:
            decoded[split].append((label, name, decode_image(data, size)))
        except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError ... for bad files
            out.append((split, label, name, 0, 0, 0, f"{type(error).__name__}: {error}"))
    for number, split in enumerate(targets):
        if not decoded[split]:
            continue
        with _next_free_byte.get_lock():
            offset = _next_free_byte[number]
            _next_free_byte[number] += sum(image.size for _, _, image in decoded[split])
        path, data_start = targets[split]
        descriptor = os.open(path, os.O_WRONLY)
        try:
            for label, name, image in decoded[split]:
                _write_all(descriptor, image, data_start + offset)
                out.append((split, label, name, offset, image.shape[0], image.shape[1], None))
                offset += image.size
        finally:
            os.close(descriptor)
    return out


def _chunks(iterable, length: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == length:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pixel_targets(folder: Path, splits) -> dict[str, tuple[str, int]]:
    """A temporary pixel file beside each ``folder/<split>_pixels.npy``, with room for its ``.npy`` header:
    ``{split: (path, first data byte)}``."""
    header_bytes = len(uint8_npy_header(0))
    return {split: (str(temporary_beside(folder / f"{split}_pixels.npy")), header_bytes) for split in splits}


def decode_all(items, size: int, targets, workers: int, bar) -> tuple[list, list[int]]:
    """Decode ``(split, label, name, bytes)`` items into the ``targets`` files with ``workers`` processes
    (1: in this one), counting them on the tqdm ``bar``; return every image's
    ``(split, label, name, offset, height, width, error)`` and each split's number of pixel bytes."""
    context = multiprocessing.get_context()
    counters = context.Array("q", len(targets))
    results = []
    skipped = 0

    def collect(chunk_results):
        nonlocal skipped
        results.extend(chunk_results)
        skipped += sum(result[6] is not None for result in chunk_results)
        bar.update(len(chunk_results))
        bar.set_postfix(skipped=skipped)

    chunks = _chunks(items, CHUNK_IMAGES)
    if workers <= 1:
        _share_counters(counters)
        for chunk in chunks:
            collect(decode_chunk(chunk, size, targets))
    else:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_share_counters, initargs=(counters,)
        ) as pool:
            pending = deque()
            for chunk in chunks:
                pending.append(pool.submit(decode_chunk, chunk, size, targets))
                while len(pending) > 2 * workers:  # bound the JPEG bytes in flight
                    collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
    return results, list(counters)


def finish_pixel_file(target: tuple[str, int], length: int, final: Path) -> None:
    """Write the ``.npy`` header of ``length`` pixel bytes into the temporary file ``target`` and rename it
    to ``final``."""
    path, header_bytes = target
    header = uint8_npy_header(length)
    if len(header) != header_bytes:
        raise RuntimeError(f"the .npy header of {length} bytes is not {header_bytes} bytes long")
    with open(path, "r+b") as file:
        file.write(header)
    os.replace(path, final)


def index_arrays(results, split: str) -> dict[str, np.ndarray]:
    """``<split>_index``, ``_labels`` and ``_names`` of the images of ``split`` that were decoded, sorted by
    name, so that the order depends neither on the archive nor on the scheduling."""
    rows = sorted(
        (name, label, offset, height, width)
        for kind, label, name, offset, height, width, error in results
        if kind == split and error is None
    )
    return {
        f"{split}_index": np.array([row[2:] for row in rows], dtype=np.int64).reshape(-1, 3),
        f"{split}_labels": np.array([row[1] for row in rows], dtype=np.int64),
        f"{split}_names": np.array([row[0] for row in rows], dtype=str),
    }
