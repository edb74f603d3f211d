r"""Classify images with a ConvNeXt and print the top classes with their probabilities.

    python -m tinyconvnext.predict dog.jpg cat.png --weights convnext_tiny_1k_224_ema.pth
    python -m tinyconvnext.predict dog.jpg --weights model.safetensors        # ours, or timm's
    python -m tinyconvnext.predict frog.png --weights runs/cifar/checkpoint.npz [--ema]
    python -m tinyconvnext.predict frog.png --weights runs/cifar            # a run folder [--ema]

The variant is the one the weights record (our .safetensors, a training run), else the one their names and
shapes fit; --model names it where several fit. The preprocessing is the one the weights record (a
training run's own: a CIFAR model gets CIFAR's 32 px and mean/std), else the variant's default: the official
evaluation (short side 256, bicubic; centre crop 224; ImageNet mean/std). --resize and --crop override it.
A training run's checkpoint.npz gives its model's weights, or with --ema its EMA weights; a run's folder
gives its final weights (model.safetensors, or model_ema.safetensors with --ema), else its checkpoint's.

Every image that cannot be read is named on stderr with the reason, and the others are still classified:
exit status 1 when some failed, 2 when none could be classified.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import autograd as ag
from autograd.backend import cupy_available

from . import cli
from .data.cifar import CLASSES as CIFAR10_CLASSES
from .imagenet import class_names
from .images import ImageReadError, load_rgb, preprocess
from .variant_table import VARIANTS
from .variants import available_models, check_recorded_variant, create_model
from .weight_names import architecture_of, fitting_variants
from .weights import default_preprocessing, load_state, read_weights_file

PROG = "python -m tinyconvnext.predict"


def predict(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Softmax probabilities (N, num_classes), as NumPy, for preprocessed images (N, 3, H, W).
    The images go to the device the model is on."""
    model.eval()
    device = model.parameters()[0].device
    out = []
    with ag.no_grad():
        for start in range(0, len(images), batch_size):
            batch = ag.tensor(images[start : start + batch_size], device=device)
            out.append(ag.softmax(model(batch), axis=1).numpy())
    return np.concatenate(out)


def _variant_for(loaded, requested: str | None) -> str:
    """The variant to build: the one asked for, the one the file records, or the one its weights fit."""
    if requested:
        return requested
    if loaded.variant:
        check_recorded_variant(loaded.variant, loaded.description)
        return loaded.variant
    fits = [name for name, _ in fitting_variants(loaded.state_dict, VARIANTS)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise cli.UsageError(f"{loaded.description} fits {', '.join(fits)}: choose one with --model")
    kind = architecture_of(loaded.state_dict)
    if kind == "ResNet":
        raise cli.UsageError(f"{loaded.description} holds ResNet weights: name the variant with --model")
    if not kind.startswith("ConvNeXt"):
        raise cli.UsageError(f"{loaded.description} holds {kind} weights, not a ConvNeXt's nor a ResNet's")
    raise cli.UsageError(
        f"{loaded.description} records no variant and fits none of the ConvNeXt variants: "
        "name one with --model (see --help)"
    )


def _build(loaded, requested: str | None):
    """The model that the weights were saved from: a training run's own configuration, else the variant."""
    if loaded.training_config and requested in (None, loaded.training_config.get("model")):
        from .build import build_model
        from .config import config_from_record

        config = config_from_record(loaded.training_config)
        check_recorded_variant(config.model, loaded.description)
        return build_model(config, num_classes=loaded.num_classes)
    return create_model(_variant_for(loaded, requested), num_classes=loaded.num_classes)


def weights_in_run_folder(folder: Path, ema: bool) -> tuple[Path, bool]:
    """(file, whether to take its EMA weights) of a training run's folder: its ``model.safetensors`` (with
    ``ema``: ``model_ema.safetensors``) where the run wrote one, else its ``checkpoint.npz``."""
    final = folder / ("model_ema.safetensors" if ema else "model.safetensors")
    if final.is_file():
        return final, False
    if (folder / "checkpoint.npz").is_file():
        return folder / "checkpoint.npz", ema
    raise FileNotFoundError(
        f"--weights {folder} is a folder without {final.name} or checkpoint.npz: expected a training run's "
        "folder or a weights file"
    )


def load_model(weights, model_name: str | None = None, ema: bool = False):
    """(model, class names, preprocessing, description) for a weights file of any kind we read, or a
    training run's folder (``weights_in_run_folder``); the model is fused (the same numbers, faster) and in
    eval mode."""
    if Path(weights).is_dir():
        weights, ema = weights_in_run_folder(Path(weights), ema)
    loaded = read_weights_file(weights, ema=ema)
    model = _build(loaded, model_name)
    load_state(model, loaded.state_dict, source=loaded.description)
    if hasattr(model, "fuse"):
        model.fuse()
    preprocessing = loaded.preprocessing or default_preprocessing(getattr(model, "variant", None))
    if loaded.num_classes == 1000:
        names = class_names()
    elif loaded.num_classes == 10 and (loaded.training_config or {}).get("dataset") == "cifar10":
        names = list(CIFAR10_CLASSES)
    else:
        names = [f"class {i}" for i in range(loaded.num_classes)]
    return model.eval(), names, preprocessing, loaded.description


def _parser():
    parser = cli.make_parser(PROG, __doc__)
    parser.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    parser.add_argument(
        "--weights",
        required=True,
        help=".safetensors (ours or timm's), official .pth, our .npz or checkpoint.npz, or a training run's "
        "folder (its model.safetensors, else its checkpoint.npz)",
    )
    parser.add_argument(
        "--model", choices=available_models(), help="the variant; unset: the one the weights record, or fit"
    )
    parser.add_argument("--ema", action="store_true", help="a training checkpoint's EMA weights")
    parser.add_argument("--topk", type=cli.positive_int, default=5, help="classes shown per image")
    parser.add_argument("--resize", type=cli.positive_int, help="short side; unset: the weights' own")
    parser.add_argument("--crop", type=cli.positive_int, help="centre crop side; unset: the weights' own")
    parser.add_argument("--batch-size", type=cli.positive_int, default=8, help="images per forward pass")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="cuda: run the model with CuPy"
    )
    return parser


def _read_images(paths, preprocessing):
    """(arrays, paths read) of the images; each one that cannot be read is named on stderr."""
    arrays, read = [], []
    for path in paths:
        try:
            arrays.append(preprocess(load_rgb(path), preprocessing))
            read.append(path)
        except ImageReadError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
    return arrays, read


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.device == "cuda" and not cupy_available():
        raise cli.UsageError("--device cuda needs CuPy and an NVIDIA GPU (pip install cupy-cuda12x)")
    model, names, preprocessing, description = load_model(args.weights, args.model, args.ema)
    preprocessing = preprocessing.with_sizes(args.crop, args.resize)
    print(f"weights: {description}\npreprocessing: {preprocessing.describe()}", file=sys.stderr)
    model.to(args.device)
    arrays, paths = _read_images(args.images, preprocessing)
    if not arrays:
        print(f"{PROG}: error: none of the {len(args.images)} images could be read", file=sys.stderr)
        return cli.EXIT_USAGE
    probabilities = predict(model, np.stack(arrays), args.batch_size)
    for path, p in zip(paths, probabilities, strict=True):
        print(path)
        for rank, k in enumerate(np.argsort(-p)[: args.topk], 1):
            print(f"  {rank}. {names[k]} ({k}): {100 * p[k]:.2f}%")
    return cli.EXIT_PARTIAL if len(paths) < len(args.images) else 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main, prog=PROG))
