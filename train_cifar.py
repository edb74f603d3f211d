"""Train ConvNeXt on CIFAR-10: the project's main job.

    python train_cifar.py                      # the headline run: docs/results.md has its time and accuracy
    python train_cifar.py --backend cupy       # the same on an NVIDIA GPU
    python train_cifar.py --epochs 5 --out runs/quick --data ../shared/data

The data is found in --data, else $TINYCONVNEXT_DATA, else downloaded once into the cache
(~/.cache/tinyconvnext). Every option of ``python -m tinyconvnext.train`` is accepted, with the defaults
below; a default that does not fit the chosen --model (the progressive resizing's 24 px start) adapts to it
and says so. ``--resume`` continues a run with its recorded options (see --resume below).
"""

import functools
import sys

from tinyconvnext.cli import run_command
from tinyconvnext.train import TrainConfig, main

PROG = "python train_cifar.py"

CIFAR_DEFAULTS = TrainConfig(  # the best recipe measured so far; its numbers are in docs/results.md
    dataset="cifar10",
    model="convnext_cifar_3stage",
    epochs=28,
    progressive_size=24,  # progressive resizing: epochs 1-16 on 24x24 images, cheaper, then 32x32,
    progressive_epochs=16,
    # 24x24 random crops at full scale, not scaled down: objects keep their test-time size
    progressive_mode="crop",
    batch_size=64,  # twice the steps of batch 128, at the same speed with two processes
    processes=0,  # one data-parallel process per CPU core (tinyconvnext/parallel.py); 1 with --backend cupy
    norm_layer="batch",  # BatchNorm in the blocks, stem and downsampling layers: learns faster than LayerNorm
    stem_init="whiten",  # the stem's first filters whiten the 2x2 image patches (tinyconvnext/whitening.py)
    flip="alternate",  # each image mirrored in every other epoch, not by a coin (tinyconvnext/augment.py)
    lr=8e-3,  # four times the LayerNorm recipe's 2e-3: BatchNorm trains well at the higher rate
    weight_decay=0.05,
    warmup_epochs=1.0,
    drop_path=0.1,
    label_smoothing=0.1,
    layer_scale=0.1,  # the paper's 1e-6 starts every block as the identity: too slow for a 25-epoch run
    ema_decay=0.0,
    tta=True,  # after the last epoch, also report the accuracy with test-time augmentation:
    tta_shift=1,  # the image, its 1-pixel diagonal shifts and their mirrors
    out="runs/cifar10",
)

if __name__ == "__main__":
    sys.exit(run_command(functools.partial(main, defaults=CIFAR_DEFAULTS, prog=PROG, doc=__doc__), prog=PROG))
