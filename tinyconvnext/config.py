"""A training run's configuration, ``TrainConfig``, and the command line that fills it.

Every field of ``TrainConfig`` is a flag of ``python -m tinyconvnext.train`` and ``train_cifar.py``
(``batch_size`` is ``--batch-size``), shown by ``--help`` in four groups: the model, the data, the
optimisation and the run.
"""

from __future__ import annotations

import argparse
import dataclasses

from .options import NORM_LAYERS, STEM_TYPES
from .variants import RESNET_VARIANTS, available_models


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "cifar10"
    model: str = "convnext_cifar_atto"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 4e-3
    min_lr: float = 1e-5
    weight_decay: float = (
        0.05  # AdamW: decoupled (lr * wd * p); SGD: an L2 term in the gradient, as PyTorch's
    )
    optimizer: str = "adamw"  # "adamw", or "sgd" (momentum, Nesterov by default) for the ResNet baselines
    momentum: float = 0.9  # SGD only
    nesterov: bool = True  # SGD only
    warmup_epochs: float = 1.0
    drop_path: float = 0.1
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    rand_augment: int = 0  # magnitude; 0 = off
    # smallest area kept by RandomResizedCrop (ImageNet-style data); fastai's Imagenette runs use 0.35
    crop_scale: float = 0.08
    random_erasing: float = 0.0
    ema_decay: float = 0.0  # 0 = no EMA
    ema_eval_every: int = (
        1  # evaluate the EMA weights every N epochs and after the last; 0 = after the last only
    )
    # After the last epoch, recompute BatchNorm's statistics with the final weights over this many training
    # batches, at most one epoch's ("precise BN", Wu & Johnson 2021; autograd.nn.precise_bn); 0 = keep the
    # running averages.
    precise_bn_batches: int = 0
    grad_clip: float = 0.0  # 0 = no clipping
    layer_scale: float = 1e-6
    depths: str = ""  # e.g. "2,2,6,2": override the variant's depths ("" keeps them)
    dims: str = ""  # e.g. "64,128,256,512": override the variant's widths
    patch_size: int = 0  # override the stem's patch size (0 keeps it)
    kernel_size: int = 0  # override the blocks' depthwise kernel (7 in the paper; 0 keeps it)
    # the stem: "patch" (the paper's), timm's "overlap", "overlap_tiered", "overlap_act", or ResNet-D's "deep"
    stem_type: str = "patch"
    norm_layer: str = (
        "layer"  # "layer" (the paper's LayerNorm) or "batch" (BatchNorm: the roadmap's "BN -> LN" undone)
    )
    stem_norm_layer: str | None = None  # the stem's norm when it differs from norm_layer (None: the same)
    image_size: int = 32
    # Evaluation at another size than training (FixRes, Touvron et al. 2019: random-resized crops make objects
    # look larger in training than in a centred test crop): 0 = image_size. eval_crop_pct: the centre crop's
    # share of the resized short side (timm's crop_pct) for data sets of larger images.
    eval_image_size: int = 0
    eval_crop_pct: float = 0.875
    # Progressive resizing (fast.ai, FFCV): training images start at progressive_size px and grow linearly
    # to image_size by epoch progressive_epochs (rounded down to the network's stride); 0 = off.
    progressive_size: int = 0
    progressive_epochs: float = 0.0
    # How CIFAR-like images get smaller: "resize" (each augmented 32x32 crop scaled down whole: objects
    # look smaller than at test time) or "crop" (a random crop of the smaller side at full scale, so the
    # objects keep the size they have in the 32x32 test images: FixRes's point about apparent object size).
    progressive_mode: str = "resize"
    seed: int = 0
    data: str | None = None
    out: str = "runs/cifar10"
    resume: bool = False
    time_budget: float = 0.0  # minutes; 0 = none
    stop_after: int = 0  # end this invocation after this many epochs (resume later); 0 = run to the end
    backend: str = "numpy"
    subset: int = 0  # train on N images drawn at random (tests, quick looks); 0 = all
    eval_subset: int = 0  # evaluate on N test images drawn at random; 0 = all
    eval_batch_size: int = 256
    tta: bool = False  # after the last epoch, also evaluate with horizontal-flip test-time augmentation
    tta_shift: int = 0  # with --tta, also average over views moved this many pixels (tinyconvnext.evaluate)
    processes: int = 1  # data-parallel worker processes on the CPU, one thread each (parallel.py); 0 = auto
    progress: bool = True


PROGRESSIVE_MODES = ("resize", "crop")
OPTIMIZERS = ("adamw", "sgd")

DESCRIPTION = (  # kept as it was until the help texts are rewritten
    "Training ConvNeXt: the loop, its recipe (the paper's Section 2.1 at small scale), "
    "checkpoints and records."
)
# The --help groups, by field; a field named in none of them falls in "run".
OPTION_GROUPS = {
    "model": "model depths dims patch_size kernel_size stem_type norm_layer stem_norm_layer layer_scale "
    "drop_path",
    "data": "dataset data image_size eval_image_size eval_crop_pct progressive_size progressive_epochs "
    "progressive_mode crop_scale rand_augment random_erasing mixup cutmix subset eval_subset",
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
    "optimizer": OPTIMIZERS,
}
HELP = {
    "data": "folder holding the data set archives (default: $TINYCONVNEXT_DATA)",
    "out": "run folder: metrics, curves and checkpoint",
    "stem_norm_layer": "the stem's norm (default: --norm-layer's)",
}


def _add_option(group, field: dataclasses.Field, default) -> None:
    """One field of TrainConfig as a flag: ``--name-with-dashes``, typed by its default."""
    flag = "--" + field.name.replace("_", "-")
    if field.name == "resume":
        group.add_argument(flag, action="store_true", help="continue the run in --out from its checkpoint")
    elif field.name == "progress":
        group.add_argument("--no-progress", action="store_true", help="no progress bars")
    elif field.name == "layer_scale":  # None when not given: a ResNet refuses it only when it is given
        group.add_argument(
            flag, type=float, default=None, help=f"ConvNeXt's layer-scale init (default {default})"
        )
    elif field.name == "model":
        group.add_argument(flag, default=default, choices=available_models())
    elif field.name == "time_budget":
        group.add_argument(flag, type=float, default=default, metavar="MINUTES")
    elif isinstance(default, bool):
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
    elif field.name in CHOICES or field.name in HELP:
        group.add_argument(flag, default=default, choices=CHOICES.get(field.name), help=HELP.get(field.name))
    else:
        group.add_argument(flag, type=type(default), default=default)


def build_parser(defaults: TrainConfig, prog: str) -> argparse.ArgumentParser:
    """The command line of a training run, with ``defaults`` as its defaults."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    groups = {name: parser.add_argument_group(name) for name in (*OPTION_GROUPS, "run")}
    group_of = {field: name for name, fields in OPTION_GROUPS.items() for field in fields.split()}
    for field in dataclasses.fields(TrainConfig):
        _add_option(groups[group_of.get(field.name, "run")], field, getattr(defaults, field.name))
    return parser


def config_from_args(defaults: TrainConfig, argv, prog) -> TrainConfig:
    """The TrainConfig of a command line (``argv``; None: ``sys.argv``), over ``defaults``."""
    parser = build_parser(defaults, prog)
    args = parser.parse_args(argv)
    if args.layer_scale is not None and args.model in RESNET_VARIANTS:
        parser.error(
            "--layer-scale sets the init of ConvNeXt's layer-scale gammas; "
            f"{args.model} is a ResNet and has none"
        )
    if args.layer_scale is None:
        args.layer_scale = defaults.layer_scale
    values = {k: v for k, v in vars(args).items() if k != "no_progress"}
    values["progress"] = not args.no_progress
    return TrainConfig(**values)
