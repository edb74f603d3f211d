"""The 1,000 ImageNet-1k classes: WordNet ids and names, in the order of the official class indices."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.tsv")


@lru_cache(maxsize=1)
def imagenet_classes() -> list[tuple[str, str]]:
    """[(wnid, name), ...] for indices 0..999."""
    rows = []
    for line in CLASSES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            index, wnid, name = line.split("\t")
            assert int(index) == len(rows)
            rows.append((wnid, name))
    return rows


def class_names() -> list[str]:
    return [name for _, name in imagenet_classes()]


def wnid_to_index() -> dict[str, int]:
    return {wnid: i for i, (wnid, _) in enumerate(imagenet_classes())}
