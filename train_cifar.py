"""Train ConvNeXt on CIFAR-10: the project's main job.

    python train_cifar.py                      # about 55 minutes on 2 CPU cores (260 images/s)
    python train_cifar.py --backend cupy       # the same on an NVIDIA GPU
    python train_cifar.py --epochs 5 --out runs/quick --data ../shared/data

The data is found in --data, else $TINYCONVNEXT_DATA, else downloaded once into the cache
(~/.cache/tinyconvnext). Every option of ``python -m tinyconvnext.train`` is accepted; see --help.
"""

import sys

from tinyconvnext.train import TrainConfig, main

CIFAR_DEFAULTS = TrainConfig(
    dataset="cifar10",
    model="convnext_cifar_atto",
    epochs=17,  # 17 x 50,000 images at ~260 images/s on 2 CPU cores: under an hour
    batch_size=128,
    lr=2e-3,
    weight_decay=0.05,
    warmup_epochs=1.0,
    drop_path=0.1,
    label_smoothing=0.1,
    ema_decay=0.0,
    out="runs/cifar10",
)

if __name__ == "__main__":
    sys.exit(main(defaults=CIFAR_DEFAULTS, prog="python train_cifar.py"))
