"""A training run's configuration, ``TrainConfig``, and the command line that fills it.

Every field of ``TrainConfig`` is a flag of ``python -m tinyconvnext.train`` and ``train_cifar.py``
(``batch_size`` is ``--batch-size``), shown by ``--help`` in four groups (the model, the data, the
optimisation and the run) with its help text from ``HELP``, its default and its unit. Each number is checked
by its type in ``TYPES`` (``tinyconvnext.cli``'s checked types), on the command line and in ``check_values``
for a ``TrainConfig`` built in code; ``check_values`` also refuses options that cannot go together.
"""

from __future__ import annotations

import argparse
import dataclasses

from . import cli
from .options import NORM_LAYERS, STEM_TYPES
from .variants import RESNET_VARIANTS, available_models


@dataclasses.dataclass
class TrainConfig:
    """A training run's options; ``HELP`` says what each one does and in which unit."""

    dataset: str = "cifar10"
    model: str = "convnext_cifar_atto"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 4e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = True
    warmup_epochs: float = 1.0
    drop_path: float = 0.1
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    rand_augment: int = 0
    crop_scale: float = 0.08
    random_erasing: float = 0.0
    ema_decay: float = 0.0
    ema_eval_every: int = 1
    precise_bn_batches: int = 0
    grad_clip: float = 0.0
    layer_scale: float = 1e-6
    depths: str = ""
    dims: str = ""
    patch_size: int = 0
    kernel_size: int = 0
    stem_type: str = "patch"
    norm_layer: str = "layer"
    stem_norm_layer: str | None = None
    stem_init: str = "default"
    image_size: int = 32
    eval_image_size: int = 0
    eval_crop_pct: float = 0.875
    progressive_size: int = 0
    progressive_epochs: float = 0.0
    progressive_mode: str = "resize"
    flip: str = "random"
    seed: int = 0
    data: str | None = None
    out: str = "runs/cifar10"
    resume: bool = False
    time_budget: float = 0.0
    stop_after: int = 0
    backend: str = "numpy"
    subset: int = 0
    eval_subset: int = 0
    eval_batch_size: int = 256
    tta: bool = False
    tta_shift: int = 0
    processes: int = 1
    progress: bool = True


PROGRESSIVE_MODES = ("resize", "crop")
FLIP_MODES = ("random", "alternate")
STEM_INITS = ("default", "whiten")
OPTIMIZERS = ("adamw", "sgd")
# What a resume may change (recorded in config.json's "changes"); the options of one invocation, which a
# resume takes from its own command line; everything else comes from the run's record (config.json).
RESUME_MAY_CHANGE = ("epochs", "time_budget", "data")
INVOCATION_ONLY = ("stop_after", "progress")
RESUME_RULE = (
    "only --epochs (to more), --time-budget and --data may change, each change recorded in config.json; "
    "--stop-after and --no-progress apply to one invocation"
)

HELP = {
    "dataset": "the data set",
    "model": "the network, by name: any of docs/models.md (tinyconvnext.available_models())",
    "epochs": "epochs to train (a resume may extend them: the schedule then spans the new total)",
    "batch_size": "images per optimizer step",
    "lr": "peak learning rate, reached after the warmup, then cosine decay",
    "min_lr": "learning rate at the end of the cosine decay",
    "weight_decay": "AdamW: decoupled (lr * wd * p); SGD: an L2 term in the gradient, as PyTorch's",
    "optimizer": "adamw, or sgd (momentum, Nesterov by default) for the ResNet baselines",
    "momentum": "SGD's momentum (SGD only)",
    "nesterov": "Nesterov momentum (SGD only)",
    "warmup_epochs": "epochs of linear warmup from 0 to --lr",
    "drop_path": "stochastic depth: the deepest block's drop probability",
    "label_smoothing": "share of each target spread over all classes",
    "mixup": "mixup's Beta(alpha, alpha); 0 = off",
    "cutmix": "cutmix's Beta(alpha, alpha); 0 = off",
    "rand_augment": "RandAugment's magnitude, 0 to 10; 0 = off",
    "crop_scale": "smallest share of the image area a random-resized crop keeps (ImageNet-style data; "
    "fastai's Imagenette runs use 0.35)",
    "random_erasing": "probability of erasing a random rectangle of each image",
    "ema_decay": "decay of the exponential moving average of the weights; 0 = no EMA",
    "ema_eval_every": "evaluate the EMA weights every N epochs and after the last; 0 = after the last only",
    "precise_bn_batches": "after the last epoch, recompute BatchNorm's statistics with the final weights "
    "over N training batches (precise BN, Wu & Johnson 2021); 0 = keep the running averages",
    "grad_clip": "clip the gradients' global L2 norm to this; 0 = no clipping",
    "layer_scale": "initial value of ConvNeXt's layer-scale gammas (the paper's 1e-6 starts every block as "
    "the identity)",
    "depths": "blocks per stage, e.g. 2,2,6,2",
    "dims": "channels per stage, e.g. 64,128,256,512",
    "patch_size": "the stem's patch size in pixels; 0 = the variant's",
    "kernel_size": "the blocks' depthwise kernel in pixels (7 in the paper); 0 = the variant's",
    "stem_type": "the stem: patch (the paper's), timm's overlap, overlap_tiered, overlap_act, or ResNet-D's "
    "deep",
    "norm_layer": "layer (the paper's LayerNorm) or batch (BatchNorm: the roadmap's 'BN -> LN' undone)",
    "stem_norm_layer": "the stem's norm (default: --norm-layer's)",
    "stem_init": "the patchify stem's filters: default (random), or whiten (airbench, Jordan 2024: the "
    "first channels whiten the image patches, each eigenvector of the training patches' covariance over the "
    "square root of its eigenvalue, with its negative)",
    "image_size": "side of the training images in pixels",
    "eval_image_size": "side of the test images in pixels (FixRes, Touvron et al. 2019); 0 = --image-size",
    "eval_crop_pct": "the test centre crop's share of the resized short side, for larger images (timm's "
    "crop_pct)",
    "progressive_size": "progressive resizing (fast.ai, FFCV): side in pixels of the first epoch's images, "
    "growing linearly to --image-size, a multiple of the network's stride; 0 = off",
    "progressive_epochs": "the epoch by which progressive resizing reaches --image-size",
    "progressive_mode": "how CIFAR-like images get smaller: resize (each augmented crop scaled down whole) "
    "or crop (a random crop of the smaller side at full scale: objects keep their test-time size)",
    "flip": "horizontal flips of the training images: random (a coin per image and epoch), or alternate "
    "(airbench, Jordan 2024: a coin per image in the first epoch, the opposite in every next one, so every "
    "two epochs show each image both ways)",
    "seed": "random seed of the weights, the data order and the augmentations",
    "data": "folder holding the data set archives (default: $TINYCONVNEXT_DATA, else the cache, else a "
    "download)",
    "out": "run folder: config.json, metrics, curves and checkpoint",
    "resume": "continue the run in --out from its checkpoint, with its recorded options: " + RESUME_RULE,
    "time_budget": "stop after the epoch that ends past this many minutes of training; 0 = no budget",
    "stop_after": "end this invocation after N epochs (continue with --resume); 0 = run to the end",
    "backend": "numpy (CPU) or cupy (NVIDIA GPU)",
    "subset": "train on N images drawn at random (tests, quick looks); 0 = all",
    "eval_subset": "evaluate on N test images drawn at random; 0 = all",
    "eval_batch_size": "images per evaluation batch",
    "tta": "after the last epoch, also evaluate with horizontal-flip test-time augmentation",
    "tta_shift": "with --tta, also average over views moved this many pixels (tinyconvnext.evaluate)",
    "processes": "data-parallel worker processes on the CPU, one thread each; 0 = one per core",
    "progress": "progress bars",
}


def _magnitude(text: str) -> int:
    value = cli.non_negative_int(text)
    if value > 10:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 10, got {text!r}")
    return value


def _int_list(text: str) -> str:
    """A comma-separated list of whole numbers of at least 1 (or nothing), kept as the text."""
    if text and not all(part.strip().isdigit() and int(part) >= 1 for part in text.split(",")):
        raise argparse.ArgumentTypeError(
            f"expected whole numbers of at least 1 separated by commas (e.g. 2,2,6,2), got {text!r}"
        )
    return text


TYPES = {
    "epochs": cli.positive_int,
    "batch_size": cli.positive_int,
    "lr": cli.positive_float,
    "min_lr": cli.non_negative_float,
    "weight_decay": cli.non_negative_float,
    "momentum": cli.below_one,
    "warmup_epochs": cli.non_negative_float,
    "drop_path": cli.below_one,
    "label_smoothing": cli.below_one,
    "mixup": cli.non_negative_float,
    "cutmix": cli.non_negative_float,
    "rand_augment": _magnitude,
    "crop_scale": cli.open_fraction,
    "random_erasing": cli.fraction,
    "ema_decay": cli.below_one,
    "ema_eval_every": cli.non_negative_int,
    "precise_bn_batches": cli.non_negative_int,
    "grad_clip": cli.non_negative_float,
    "layer_scale": cli.non_negative_float,
    "depths": _int_list,
    "dims": _int_list,
    "patch_size": cli.non_negative_int,
    "kernel_size": cli.non_negative_int,
    "image_size": cli.positive_int,
    "eval_image_size": cli.non_negative_int,
    "eval_crop_pct": cli.open_fraction,
    "progressive_size": cli.non_negative_int,
    "progressive_epochs": cli.non_negative_float,
    "seed": cli.non_negative_int,
    "time_budget": cli.non_negative_float,
    "stop_after": cli.non_negative_int,
    "subset": cli.non_negative_int,
    "eval_subset": cli.non_negative_int,
    "eval_batch_size": cli.positive_int,
    "tta_shift": cli.non_negative_int,
    "processes": cli.non_negative_int,
}
METAVARS = {
    "model": "NAME",
    "depths": "N,N,...",
    "dims": "N,N,...",
    "epochs": "EPOCHS",
    "batch_size": "IMAGES",
    "warmup_epochs": "EPOCHS",
    "progressive_epochs": "EPOCHS",
    "time_budget": "MINUTES",
    "stop_after": "EPOCHS",
    "subset": "IMAGES",
    "eval_subset": "IMAGES",
    "eval_batch_size": "IMAGES",
    "image_size": "PIXELS",
    "eval_image_size": "PIXELS",
    "progressive_size": "PIXELS",
    "patch_size": "PIXELS",
    "kernel_size": "PIXELS",
    "tta_shift": "PIXELS",
    "precise_bn_batches": "BATCHES",
    "ema_eval_every": "EPOCHS",
    "data": "DIR",
    "out": "DIR",
}
# The --help groups, by field; a field named in none of them falls in "run".
OPTION_GROUPS = {
    "model": "model depths dims patch_size kernel_size stem_type norm_layer stem_norm_layer stem_init "
    "layer_scale drop_path",
    "data": "dataset data image_size eval_image_size eval_crop_pct progressive_size progressive_epochs "
    "progressive_mode flip crop_scale rand_augment random_erasing mixup cutmix subset eval_subset",
    "optimisation": "epochs batch_size optimizer lr min_lr weight_decay momentum nesterov warmup_epochs "
    "label_smoothing grad_clip ema_decay ema_eval_every precise_bn_batches",
}
CHOICES = {
    "dataset": ["cifar10", "imagenette"],
    "backend": ["numpy", "cupy"],
    "stem_type": STEM_TYPES,
    "norm_layer": NORM_LAYERS,
    "stem_norm_layer": NORM_LAYERS,
    "progressive_mode": PROGRESSIVE_MODES,
    "flip": FLIP_MODES,
    "stem_init": STEM_INITS,
    "optimizer": OPTIMIZERS,
}


def flag(field: str) -> str:
    """The command-line flag of a TrainConfig field: ``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


# Options whose default is described in their help text instead of shown as "(default: None)"; they stay
# unset when not given (a ResNet refuses --layer-scale only when it is given).
DEFAULT_IN_HELP = {
    "layer_scale": "ConvNeXt's {value} (a ResNet has none)",
    "data": "$TINYCONVNEXT_DATA, else the cache, else a download",
    "stem_norm_layer": "--norm-layer's",
    "depths": "the variant's",
    "dims": "the variant's",
}


def _add_option(group, field: str, default) -> None:
    """One field of TrainConfig as a flag, with its help text, checked type, metavar and choices;
    ``default`` ``argparse.SUPPRESS``: the flag is absent from the parsed namespace unless given."""
    text = HELP[field].replace("%", "%%")
    if field in DEFAULT_IN_HELP:
        text = text.split(" (default:")[0] + f" (default: {DEFAULT_IN_HELP[field].format(value=default)})"
    options = dict(help=text, default=argparse.SUPPRESS if field in DEFAULT_IN_HELP else default)
    if field == "resume":
        group.add_argument(flag(field), action="store_true", **options)
    elif field == "progress":  # --no-progress: stored as its opposite
        off = default if default is argparse.SUPPRESS else not default
        group.add_argument("--no-progress", action="store_true", help="no progress bars", default=off)
    elif isinstance(getattr(TrainConfig, field), bool):  # --tta / --no-tta
        group.add_argument(flag(field), action=argparse.BooleanOptionalAction, **options)
    else:
        group.add_argument(
            flag(field),
            type=TYPES.get(field),
            choices=available_models() if field == "model" else CHOICES.get(field),
            metavar=METAVARS.get(field),
            **options,
        )


def build_parser(
    defaults: TrainConfig, prog: str, doc: str | None = None, given_only: bool = False
) -> argparse.ArgumentParser:
    """The command line of a training run, over ``defaults``, with ``doc`` as its description;
    ``given_only``: without defaults, so that its namespace holds only the options given."""
    parser = cli.make_parser(prog, doc)
    groups = {name: parser.add_argument_group(name) for name in (*OPTION_GROUPS, "run")}
    group_of = {field: name for name, fields in OPTION_GROUPS.items() for field in fields.split()}
    for field in dataclasses.fields(TrainConfig):
        default = argparse.SUPPRESS if given_only else getattr(defaults, field.name)
        _add_option(groups[group_of.get(field.name, "run")], field.name, default)
    return parser


def parse_command_line(defaults: TrainConfig, argv, prog: str, doc: str | None = None):
    """(TrainConfig, the names of the fields given on the command line) of ``argv`` (None: ``sys.argv``),
    over ``defaults``. Which fields were given matters to a resume (they must agree with the record) and to
    defaults that adapt to the model (``pipeline.fit_progressive_size``)."""
    parser = build_parser(defaults, prog, doc)
    args = vars(parser.parse_args(argv))
    given = set(vars(build_parser(defaults, prog, doc, given_only=True).parse_args(argv))) - {"debug"}
    if "no_progress" in given:
        given = (given - {"no_progress"}) | {"progress"}
    if "layer_scale" in given and args["model"] in RESNET_VARIANTS:
        parser.error(
            "--layer-scale sets the init of ConvNeXt's layer-scale gammas; "
            f"{args['model']} is a ResNet and has none"
        )
    values = {name: args.get(name, getattr(defaults, name)) for name in DEFAULT_IN_HELP}
    values.update({k: v for k, v in args.items() if k not in ("no_progress", "debug")})
    values["progress"] = not args["no_progress"]
    return TrainConfig(**values), given & {field.name for field in dataclasses.fields(TrainConfig)}


def config_from_args(defaults: TrainConfig, argv, prog, doc: str | None = None) -> TrainConfig:
    """The TrainConfig of a command line (``argv``; None: ``sys.argv``), over ``defaults``."""
    return parse_command_line(defaults, argv, prog, doc)[0]


def config_from_record(record: dict) -> TrainConfig:
    """The TrainConfig of a recorded configuration (config.json, a checkpoint's, a weights file's metadata),
    its unknown keys (``changes``, options of other versions) left out and its missing ones the defaults."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in record.items() if key in known})


def check_values(config: TrainConfig) -> None:
    """Refuse, with ``cli.UsageError`` naming the flags, a value out of its range (as ``TYPES`` checks it
    on the command line, for a TrainConfig built in code) or options that cannot go together."""
    for field, check in TYPES.items():
        value = getattr(config, field)
        try:
            check(str(value))
        except argparse.ArgumentTypeError as error:
            raise cli.UsageError(f"{flag(field)}: {error}") from None
    for field, choices in (("flip", FLIP_MODES), ("stem_init", STEM_INITS)):
        if getattr(config, field) not in choices:
            raise cli.UsageError(
                f"{flag(field)}: expected one of {', '.join(choices)}, got {getattr(config, field)!r}"
            )
    if config.depths and config.dims and len(config.depths.split(",")) != len(config.dims.split(",")):
        raise cli.UsageError(
            f"--depths {config.depths} and --dims {config.dims} name different numbers of stages: "
            "expected one width per stage"
        )
    if config.min_lr > config.lr:
        raise cli.UsageError(
            f"--min-lr {config.min_lr} is above --lr {config.lr}: the cosine decay goes down from --lr "
            "to --min-lr"
        )
    if config.processes > 1 and config.backend != "numpy":
        raise cli.UsageError(
            f"--processes {config.processes} is data parallelism over CPU cores: use it with "
            f"--backend numpy, not {config.backend}"
        )
    if config.processes > config.batch_size:
        raise cli.UsageError(
            f"--batch-size {config.batch_size} cannot be split over --processes {config.processes}: "
            "each process needs at least one image"
        )
    if config.subset and config.subset < config.batch_size:
        raise cli.UsageError(
            f"--batch-size {config.batch_size} is larger than --subset {config.subset}: no full batch "
            "to train on"
        )
