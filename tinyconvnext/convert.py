"""Convert an official ConvNeXt ``.pth`` checkpoint to our ``.npz`` format, once, where PyTorch is installed.

    python -m tinyconvnext.convert convnext_tiny_1k_224_ema.pth convnext_tiny_1k.npz [--model convnext_tiny]

With ``--model`` the converted weights are also loaded into that variant, to prove they fit (the number of
classes is taken from the checkpoint's head).
"""

from __future__ import annotations

import argparse
import sys

from .weights import load_state, num_classes_of, read_official_checkpoint, save_npz


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyconvnext.convert", description=__doc__.splitlines()[0]
    )
    parser.add_argument("source", help="official .pth checkpoint")
    parser.add_argument("target", help="output .npz file")
    parser.add_argument("--model", help="variant to check the weights against, e.g. convnext_tiny")
    args = parser.parse_args(argv)
    state_dict = read_official_checkpoint(args.source)
    if args.model:
        from .variants import create_model

        model = create_model(args.model, num_classes=num_classes_of(state_dict))
        load_state(model, state_dict, source=f"checkpoint {args.source}")
    save_npz(state_dict, args.target)
    total = sum(v.size for v in state_dict.values())
    print(f"wrote {args.target}: {len(state_dict)} arrays, {total / 1e6:.2f}M values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
