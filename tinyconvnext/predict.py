r"""Classify images with a ConvNeXt and print the top classes with their probabilities.

    python -m tinyconvnext.predict dog.jpg cat.png --model convnext_tiny \
        --weights convnext_tiny_1k_224_ema.pth

Uses the official evaluation preprocessing (short side 256, bicubic; centre crop 224; ImageNet mean/std).
A missing or unreadable image is reported by name on stderr; the others are still classified, and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import autograd as ag
from autograd.backend import cupy_available

from .imagenet import class_names
from .images import ImageReadError, eval_transform, load_rgb
from .variants import available_models, create_model
from .weights import load_state, num_classes_of, read_weights


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


def load_model(name: str, weights) -> tuple[object, list[str]]:
    state_dict = read_weights(weights)
    num_classes = num_classes_of(state_dict)
    model = create_model(name, num_classes=num_classes)
    load_state(model, state_dict, source=f"weights file {weights}")
    model.fuse()  # the fast fused ops (Linear+GELU), the same numbers
    names = class_names() if num_classes == 1000 else [f"class {i}" for i in range(num_classes)]
    return model, names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyconvnext.predict", description=__doc__.splitlines()[0]
    )
    parser.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    parser.add_argument("--model", default="convnext_tiny", choices=available_models())
    parser.add_argument("--weights", required=True, help="official .pth checkpoint or our .npz")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="cuda: run the model with CuPy"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not cupy_available():
        parser.error("--device cuda needs CuPy and an NVIDIA GPU (pip install cupy-cuda12x)")
    model, names = load_model(args.model, args.weights)
    model.to(args.device)
    arrays, paths, failed = [], [], 0
    for path in args.images:
        try:
            arrays.append(eval_transform(load_rgb(path), args.resize, args.crop))
            paths.append(path)
        except ImageReadError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
    if arrays:
        probabilities = predict(model, np.stack(arrays))
        for path, p in zip(paths, probabilities, strict=False):
            top = np.argsort(-p)[: args.topk]
            print(path)
            for rank, k in enumerate(top, 1):
                print(f"  {rank}. {names[k]} ({k}): {100 * p[k]:.2f}%")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
