"""Convert ConvNeXt weights to ``.safetensors`` with official names (or to our ``.npz``), once.

    python -m tinyconvnext.convert convnext_tiny_1k_224_ema.pth convnext_tiny_1k.safetensors
    python -m tinyconvnext.convert timm_model.safetensors convnext_atto.safetensors      # timm's names
    python -m tinyconvnext.convert runs/cifar/checkpoint.npz cifar.safetensors [--ema]  # a training run

The input is any file we read: an official ``.pth`` (this needs PyTorch), timm's or our ``.safetensors``, our
``.npz``, a training run's ``checkpoint.npz``. The output's format follows its suffix. A ``.safetensors``
output records the variant, the number of classes and the evaluation preprocessing, for ``predict``: as the
input records them, else the variant that the weights fit (``--model`` where several do) and its default
preprocessing (``--image-size``/``--resize`` override it). With ``--model`` the weights are also loaded into
that variant, to prove they fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import cli
from .variant_table import VARIANTS
from .variants import available_models, check_recorded_variant, create_model
from .weight_names import fitting_variants
from .weights import (
    default_preprocessing,
    load_state,
    read_weights_file,
    save_npz,
    save_safetensors,
    weights_metadata,
)

PROG = "python -m tinyconvnext.convert"
OUTPUT_SUFFIXES = (".safetensors", ".npz")


def _parser():
    parser = cli.make_parser(PROG, __doc__)
    parser.add_argument("source", help="weights: official .pth, .safetensors (ours or timm's), .npz")
    parser.add_argument("target", help="output file: .safetensors (official names, with metadata) or .npz")
    parser.add_argument("--model", choices=available_models(), help="check the weights against this variant")
    parser.add_argument("--ema", action="store_true", help="a training checkpoint's EMA weights")
    parser.add_argument(
        "--image-size",
        type=cli.positive_int,
        help="the centre crop to record; unset: the input's",
    )
    parser.add_argument(
        "--resize",
        type=cli.positive_int,
        help="the short side to record; unset: the input's",
    )
    return parser


def _variant(loaded, requested):
    """The variant to record: asked for (and proven by loading), recorded by the input, or the one it fits."""
    if requested:
        model = create_model(requested, num_classes=loaded.num_classes)
        load_state(model, loaded.state_dict, source=loaded.description)
        return requested
    if loaded.variant:
        check_recorded_variant(loaded.variant, loaded.description)
        return loaded.variant
    fits = [name for name, _ in fitting_variants(loaded.state_dict, VARIANTS)]
    if len(fits) > 1:
        raise cli.UsageError(f"{loaded.description} fits {', '.join(fits)}: choose one with --model")
    return fits[0] if fits else None


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    target = Path(args.target)
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise cli.UsageError(f"target {target}: expected a name ending in {' or '.join(OUTPUT_SUFFIXES)}")
    if target.suffix.lower() == ".npz" and (args.image_size or args.resize):
        raise cli.UsageError(
            f"--image-size/--resize: target {target} is an .npz, which records no preprocessing: "
            "leave them out, or write a .safetensors"
        )
    if target.exists() and target.resolve() == Path(args.source).resolve():
        raise cli.UsageError(f"target {target} is the source: write the converted weights to another file")
    loaded = read_weights_file(args.source, ema=args.ema)
    variant = _variant(loaded, args.model)
    preprocessing = loaded.preprocessing or default_preprocessing(variant)
    preprocessing = preprocessing.with_sizes(args.image_size, args.resize)
    if target.suffix.lower() == ".npz":
        save_npz(loaded.state_dict, target)
    else:
        metadata = weights_metadata(variant, loaded.num_classes, preprocessing, loaded.training_config)
        save_safetensors(loaded.state_dict, target, metadata)
    total = sum(v.size for v in loaded.state_dict.values())
    print(
        f"wrote {target}: {len(loaded.state_dict)} arrays, {total / 1e6:.2f}M values, "
        f"from {loaded.description}; {variant or 'no known variant'}, {loaded.num_classes} classes, "
        f"{preprocessing.describe()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main, prog=PROG))
