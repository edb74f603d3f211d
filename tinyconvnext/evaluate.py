"""The evaluate command: a training run's weights scored on its test set, with optional test-time views.

    python -m tinyconvnext.evaluate runs/cifar10                     # the run's final weights, plain
    python -m tinyconvnext.evaluate runs/cifar10 --tta --tta-shift 1  # + mirror and 1-pixel shifts
    python -m tinyconvnext.evaluate runs/imagenette --image-size 160 --crop-pct 1.0  # test at another size
    python -m tinyconvnext.evaluate runs/cifar10 --tta --save at32.npz   # also keep each image's logits
                                                                         # (to compare: tinyconvnext.paired)
    python -m tinyconvnext.evaluate runs/imagenette --precise-bn-batches 100
                                                                         # (BatchNorm statistics recomputed)

Test-time augmentation scores the mean of the logits over several views of each image: the image itself,
its mirror image (``flip``), and with ``shift=s`` each of those moved ``s`` pixels diagonally, down-right
and up-left (the border filled by reflection). Averaging over small, label-preserving changes the network
was trained on cancels part of its errors; fast CIFAR-10 training uses both (e.g. Keller Jordan's airbench).
The loss of a TTA evaluation is the cross-entropy of the averaged logits.

Testing at a larger size than training often scores higher when training used random-resized crops, which
show objects larger than a centred crop of the whole image does (FixRes: Touvron et al., 2019, "Fixing the
train-test resolution discrepancy"); ``--image-size`` and ``--crop-pct`` measure it on a trained run.

``--precise-bn-batches N`` first recomputes the BatchNorm statistics of the final weights over N training
batches (``autograd.nn.precise_bn``; training's option of the same name does it at the end of a run), in
memory only: the checkpoint is not changed.

The weights run on the run's backend, or the one ``--backend`` names; a CuPy run is evaluated with NumPy,
said in a note, on a machine where CuPy cannot run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from autograd import nn
from autograd.backend import cupy_available

from . import cli
from .after_epoch import precise_batchnorm
from .augment import tta_views
from .build import device_for
from .checkpoint import write_npz_atomically
from .engine import evaluate
from .pipeline import eval_size, make_loaders, progressive_stride, train_image_size
from .records import load_trained_model

PROG = "python -m tinyconvnext.evaluate"
__all__ = ["evaluate", "evaluate_run", "main", "tta_views"]  # evaluate, tta_views: engine.py, augment.py


def evaluate_run(
    run,
    data=None,
    ema: bool = False,
    flip: bool = False,
    shift: int = 0,
    image_size: int = 0,
    crop_pct: float = 0.0,
    batch_size: int = 256,
    dataset=None,
    save=None,
    precise_bn_batches: int = 0,
    backend: str | None = None,
) -> dict:
    """Evaluate a training run's weights on its data set's whole test set: a record with ``test_loss`` and
    ``test_acc``, and with ``flip`` or ``shift`` also ``test_loss_tta`` and ``test_acc_tta``.
    ``run``: the run folder (``--out``) or its checkpoint; ``data`` overrides the run's ``--data``;
    ``image_size`` and ``crop_pct`` the run's test image side and centre crop (0: the run's own);
    ``dataset`` (a ``tinyconvnext.pipeline.ImageDataset``) replaces loading one. ``save``: a ``.npz`` path
    that receives ``labels``, ``logits`` and, with TTA, ``logits_tta`` (one row per test image, in the test
    set's order), written atomically; ``tinyconvnext.paired`` compares two such files image by image.
    ``precise_bn_batches``: first recompute the BatchNorm statistics over that many training batches.
    ``backend``: numpy or cupy (None: the run's, ``run_backend``)."""
    model, config = load_trained_model(run, ema=ema)
    model.fuse()  # the fast fused ops, as training evaluates with them
    config = dataclasses.replace(
        config,
        data=data or recorded_data_path(run, config),
        eval_batch_size=batch_size,
        eval_subset=0,
        eval_image_size=image_size or eval_size(config),
        eval_crop_pct=crop_pct or config.eval_crop_pct,
        backend=backend or run_backend(config.backend),
    )
    device = device_for(config.backend)
    model.to(device)
    train_loader, test_loader, _ = make_loaders(config, dataset)
    record = {
        "run": str(run),
        "weights": "ema" if ema else "model",
        "images": test_loader.num_items,
        "image_size": config.eval_image_size,
        "crop_pct": config.eval_crop_pct,
    }
    if precise_bn_batches:
        _recompute_batchnorm(run, model, config, train_loader, device, precise_bn_batches)
        record["precise_bn_batches"] = precise_bn_batches
    plain, augmented = ([], []) if save else (None, None)  # each batch's logits, kept only to be saved
    record["test_loss"], record["test_acc"] = evaluate(model, test_loader, device, outputs=plain)
    if flip or shift:
        record["tta"] = {"flip": flip, "shift": shift}
        record["test_loss_tta"], record["test_acc_tta"] = evaluate(
            model, test_loader, device, flip=flip, shift=shift, outputs=augmented
        )
    if save:
        record["saved"] = str(_save_logits(save, plain, augmented))
    return record


def run_backend(recorded: str) -> str:
    """The backend a run was trained with, or numpy (said on stderr) where CuPy cannot run here."""
    if recorded == "cupy" and not cupy_available():
        print(
            f"{PROG}: note: the run was trained with CuPy, which cannot run here: using numpy",
            file=sys.stderr,
        )
        return "numpy"
    return recorded


def recorded_data_path(run, config) -> str | None:
    """The run's ``--data``. Runs record it as an absolute path; an older run's relative path was relative
    to the folder it was trained from, which its relative ``--out`` locates: the run folder's ancestor
    where ``--out`` began. Failing that, it is tried from the current folder."""
    data = config.data
    if data is None or Path(data).is_absolute():
        return data
    folder = Path(run).resolve()
    if folder.suffix == ".npz":
        folder = folder.parent
    out_parts = Path(config.out).parts
    if not Path(config.out).is_absolute() and folder.parts[-len(out_parts) :] == out_parts:
        trained_from = folder.parents[len(out_parts) - 1]
        if (trained_from / data).exists():
            return str(trained_from / data)
    return data


def _recompute_batchnorm(run, model, config, train_loader, device, batches: int) -> None:
    """Recompute ``model``'s BatchNorm statistics over ``batches`` training batches at the last epoch's
    image size (``--precise-bn-batches``); a run without BatchNorm is refused before any work."""
    if not any(isinstance(module, nn.BatchNorm2d) for module in model.modules()):
        raise cli.UsageError(
            f"--precise-bn-batches recomputes BatchNorm statistics, but {run} has no BatchNorm layer"
        )
    side = train_image_size(config, config.epochs - 1, progressive_stride(config))  # the last epoch's
    precise_batchnorm(
        dataclasses.replace(config, precise_bn_batches=batches), model, train_loader, side, device
    )


def _save_logits(path, plain, augmented):
    """Each test image's label and logits (and TTA's, when given), in the test set's order."""
    arrays = {
        "labels": np.concatenate([y for _, y in plain]),
        "logits": np.concatenate([z for z, _ in plain]),
    }
    if augmented:
        arrays["logits_tta"] = np.concatenate([z for z, _ in augmented])
    return write_npz_atomically(path, arrays)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__)
    parser.add_argument("run", help="a training run's folder (--out) or its checkpoint.npz")
    parser.add_argument(
        "--data", metavar="DIR", help="folder holding the data set archives (default: the run's)"
    )
    parser.add_argument("--ema", action="store_true", help="evaluate the EMA weights (runs with --ema-decay)")
    parser.add_argument("--tta", action="store_true", help="also evaluate with the mirror image of each view")
    parser.add_argument(
        "--tta-shift",
        type=cli.non_negative_int,
        default=0,
        metavar="PIXELS",
        help="also evaluate with each view moved this many pixels both ways diagonally; 0 = no shift",
    )
    parser.add_argument(
        "--image-size",
        type=cli.non_negative_int,
        default=0,
        metavar="PIXELS",
        help="test image side; 0 = the run's",
    )
    parser.add_argument(
        "--crop-pct",
        type=cli.fraction,
        default=0.0,
        help="centre crop's share of the resized short side, for larger images; 0 = the run's",
    )
    parser.add_argument(
        "--batch-size", type=cli.positive_int, default=256, metavar="IMAGES", help="images per batch"
    )
    parser.add_argument(
        "--backend",
        choices=["numpy", "cupy"],
        help="numpy (CPU) or cupy (NVIDIA GPU); unset: the run's, or numpy where CuPy cannot run",
    )
    parser.add_argument(
        "--save",
        metavar="FILE.npz",
        help="also write each test image's label and logits (compare two with tinyconvnext.paired)",
    )
    parser.add_argument(
        "--precise-bn-batches",
        type=cli.non_negative_int,
        default=0,
        metavar="BATCHES",
        help="first recompute the BatchNorm statistics over this many training batches (not saved); 0 = off",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is not None and not os.path.exists(args.data):
        raise cli.UsageError(f"--data {args.data}: no such folder (expected one holding the data set)")
    record = evaluate_run(
        args.run,
        args.data,
        args.ema,
        args.tta,
        args.tta_shift,
        args.image_size,
        args.crop_pct,
        args.batch_size,
        save=args.save,
        precise_bn_batches=args.precise_bn_batches,
        backend=args.backend,
    )
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main, prog=PROG))
