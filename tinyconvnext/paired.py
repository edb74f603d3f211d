"""Paired comparison of two evaluations on the same test images: which images each one gets right.

    python -m tinyconvnext.evaluate runs/imagenette --save at128.npz
    python -m tinyconvnext.evaluate runs/imagenette --image-size 160 --crop-pct 1.0 --save at160.npz
    python -m tinyconvnext.paired at128.npz at160.npz        # the second against the first
    python -m tinyconvnext.paired a.npz:logits_tta b.npz      # a file's TTA logits instead of its plain ones

Two accuracies measured on the same images are far less noisy to compare than two training runs: only the
images on which the two evaluations disagree carry information. If B gets ``gained`` images right that A
gets wrong and ``lost`` images wrong that A gets right, and neither is truly better, then each of the
``gained + lost`` disagreements goes either way with probability 1/2 (McNemar's test, 1947), so

    z = (gained - lost) / sqrt(gained + lost)

is close to a standard normal: |z| > 2 happens by chance about once in 20 comparisons.
"""

from __future__ import annotations

import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np

from .cli import UsageError, make_parser, run_command

SAVED_BY = "write it with python -m tinyconvnext.evaluate RUN --save FILE.npz"


def load_logits(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """(logits, labels) from ``FILE.npz`` or ``FILE.npz:KEY`` (KEY: ``logits``, the default, or
    ``logits_tta``), a file written by ``python -m tinyconvnext.evaluate --save``."""
    path, colon, key = spec.rpartition(":")
    if not colon or not key.startswith("logits"):  # no key given (or a colon that belongs to the path)
        path, key = spec, "logits"
    if not Path(path).is_file():
        raise FileNotFoundError(f"{spec}: no such file; expected FILE.npz or FILE.npz:KEY ({SAVED_BY})")
    logits, labels = _read_npz(path, key)
    if (
        logits.ndim != 2
        or logits.dtype.kind not in "fiu"
        or labels.shape != (len(logits),)
        or labels.dtype.kind not in "iu"
    ):
        raise UsageError(
            f"{spec}: expected logits of shape (images, classes) and one whole-number label per image, got "
            f"{logits.shape} and {labels.shape} {labels.dtype}"
        )
    return logits, labels


def _read_npz(path: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``key`` and ``labels`` of an ``.npz`` file; any unreadable file is a ``UsageError``."""
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        saved = np.load(path, allow_pickle=False)
    except unreadable as error:
        raise UsageError(f"{path}: not a readable .npz file ({type(error).__name__}: {error})") from None
    if not isinstance(saved, np.lib.npyio.NpzFile):
        raise UsageError(f"{path} holds one array (a .npy file); expected an .npz file ({SAVED_BY})")
    with saved:
        if "labels" not in saved or key not in saved:
            raise UsageError(
                f"{path} holds {sorted(saved.files)}; expected 'labels' and {key!r} ({SAVED_BY})"
            )
        try:
            return saved[key], saved["labels"]
        except unreadable as error:
            raise UsageError(
                f"{path}: {key} or labels cannot be read ({type(error).__name__}: {error})"
            ) from None


def compare(logits_a: np.ndarray, logits_b: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of A and of B on the same images, the images B gains and loses against A, and McNemar's z."""
    if logits_a.shape != logits_b.shape or len(labels) != len(logits_a):
        raise ValueError(
            f"the two evaluations must cover the same images and classes: got logits of shapes "
            f"{logits_a.shape} and {logits_b.shape} for {len(labels)} labels"
        )
    right_a = logits_a.argmax(axis=1) == labels
    right_b = logits_b.argmax(axis=1) == labels
    gained, lost = int(np.sum(right_b & ~right_a)), int(np.sum(right_a & ~right_b))
    disagreements = gained + lost
    return {
        "images": len(labels),
        "acc_a": float(right_a.mean()),
        "acc_b": float(right_b.mean()),
        "gained": gained,
        "lost": lost,
        "z": (gained - lost) / math.sqrt(disagreements) if disagreements else 0.0,
    }


def main(argv=None) -> int:
    parser = make_parser("python -m tinyconvnext.paired", __doc__)
    parser.add_argument(
        "a",
        help="FILE.npz[:KEY] from evaluate --save (KEY: logits, the default, or logits_tta): the reference",
    )
    parser.add_argument("b", help="FILE.npz[:KEY]: the evaluation compared with it, on the same test images")
    args = parser.parse_args(argv)
    (logits_a, labels_a), (logits_b, labels_b) = load_logits(args.a), load_logits(args.b)
    if not np.array_equal(labels_a, labels_b):
        raise UsageError(
            f"{args.a} and {args.b} hold different test sets (their labels differ: {len(labels_a)} and "
            f"{len(labels_b)} images): a paired comparison needs the same images in the same order"
        )
    print(json.dumps({"a": args.a, "b": args.b, **compare(logits_a, logits_b, labels_a)}))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, prog="python -m tinyconvnext.paired"))
