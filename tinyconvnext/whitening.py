"""A first layer that whitens the image patches (``--stem-init whiten``; Jordan 2024, airbench).

The patchify stem sees the image as non-overlapping p x p patches, each a vector of p*p*C numbers.
Neighbouring pixels and the three colours are strongly correlated, so a few directions of that space hold
most of the variance and the rest very little. Filters made from the patches' covariance
``Sigma = V diag(lambda) V^T``,

    w_k = v_k / sqrt(lambda_k + eps)      and      -w_k,       k = 1 .. p*p*C,

map the patches to decorrelated outputs of unit variance: the next layers start from inputs whose
directions all matter equally, and the early epochs learn faster. Each filter comes with its negative, so
that after a nonlinearity neither sign of a direction is lost.

    filters = patch_whitening_filters(images, patch_size=2)   # (2*p*p*C, C, p, p), largest variance first
    whiten_stem(model, images)                                # into the stem's first output channels
"""

from __future__ import annotations

import numpy as np

from autograd import nn
from autograd.backend import to_device

from . import cli

# Keeps the directions of almost no variance (flat patches) from being amplified without bound.
WHITENING_EPS = 5e-4


def image_patches(images: np.ndarray, patch_size: int) -> np.ndarray:
    """(N, C, H, W) images -> (N * (H // p) * (W // p), C * p * p): every p x p patch at stride p, each
    flattened in the order of a filter of shape (C, p, p). Rows and columns past the last whole patch are
    left out, as the stem leaves them."""
    if images.ndim != 4:
        raise ValueError(f"image_patches expects (N, C, H, W) images, got an array of shape {images.shape}")
    n, c, h, w = images.shape
    rows, cols = h // patch_size, w // patch_size
    if patch_size < 1 or rows == 0 or cols == 0:
        raise ValueError(f"image_patches: a patch of {patch_size} px does not fit {h}x{w} images")
    grid = images[:, :, : rows * patch_size, : cols * patch_size]
    grid = grid.reshape(n, c, rows, patch_size, cols, patch_size)
    return grid.transpose(0, 2, 4, 1, 3, 5).reshape(-1, c * patch_size * patch_size)


def patch_whitening_filters(images: np.ndarray, patch_size: int, eps: float = WHITENING_EPS) -> np.ndarray:
    """The whitening filters of the p x p patches of ``images`` ((N, C, H, W), normalised as the network
    sees them): ``v_k / sqrt(lambda_k + eps)`` for each eigenvector ``v_k`` of the patches' covariance, by
    decreasing eigenvalue ``lambda_k``, then the same filters negated. Returns (2*C*p*p, C, p, p) float64."""
    patches = image_patches(np.asarray(images, dtype=np.float64), patch_size)
    if len(patches) < 2:
        raise ValueError(
            f"patch_whitening_filters needs at least 2 patches to estimate a covariance, got {len(patches)}"
        )
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    order = np.argsort(eigenvalues)[::-1]  # largest variance first
    scale = 1.0 / np.sqrt(np.maximum(eigenvalues[order], 0.0) + eps)  # eigh may give -1e-17 for a zero
    filters = (eigenvectors[:, order] * scale).T.reshape(-1, images.shape[1], patch_size, patch_size)
    return np.concatenate([filters, -filters])


def stem_conv(model) -> nn.PatchifyConv2dChannelsLast:
    """The patchify conv that the stem of ``model`` applies to the image first, or a ``cli.UsageError`` for a
    stem that does not start with one (an overlapping or deep stem, a ResNet's)."""
    layers = getattr(model, "downsample_layers", None)
    first = layers[0][0] if layers is not None and isinstance(layers[0], nn.Sequential) else None
    if not isinstance(first, nn.PatchifyConv2dChannelsLast):
        found = type(first).__name__ if first is not None else f"a {type(model).__name__} stem"
        raise cli.UsageError(
            f"--stem-init whiten sets the filters of a patchify stem (--stem-type patch), a single conv on "
            f"the image; this model's stem starts with {found}"
        )
    return first


def whiten_stem(model, images: np.ndarray, eps: float = WHITENING_EPS) -> None:
    """Set the first output channels of the stem's conv to ``patch_whitening_filters`` of ``images``, with
    bias zero; as many as there are channels, when there are fewer than 2*C*p*p. The other channels keep
    their initialisation."""
    conv = stem_conv(model)
    if images.ndim != 4 or images.shape[1] != conv.in_channels:
        raise ValueError(
            f"whiten_stem expects (N, {conv.in_channels}, H, W) images for this stem, got {images.shape}"
        )
    filters = patch_whitening_filters(images, conv.patch_size, eps)[: conv.out_channels]
    weight = conv.weight.data
    weight[: len(filters)] = to_device(filters.astype(weight.dtype), conv.weight.device)
    if conv.bias is not None:
        conv.bias.data[: len(filters)] = 0
