"""Shared by the training-loop tests: a small learnable data set and a tiny, fast run configuration."""

import numpy as np

from tinyconvnext.train import ImageDataset, TrainConfig


def synthetic_cifar(n_train=160, n_test=96, seed=0):
    """32x32 images whose class sets the colour of a square at a class-dependent place: learnable fast."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 32, 32, 3)).astype(np.uint8)
        for i, k in enumerate(labels):
            r, c = 4 + 6 * (k // 4), 4 + 6 * (k % 4)
            images[i, r : r + 8, c : c + 8, k % 3] = 250
        return images, labels

    (tx, ty), (vx, vy) = make(n_train), make(n_test)
    return ImageDataset(tx, ty, vx, vy, [f"class {k}" for k in range(10)])


def tiny_config(tmp_path, **overrides):
    base = dict(
        model="convnext_cifar_atto",
        depths="1,1,2,1",
        dims="16,32,64,96",
        epochs=2,
        batch_size=32,
        lr=2e-3,
        warmup_epochs=0.5,
        drop_path=0.1,
        ema_decay=0.9,
        grad_clip=1.0,
        out=str(tmp_path / "run"),
        progress=False,
        seed=3,
    )
    return TrainConfig(**{**base, **overrides})
