"""How fast is this machine right now? A fixed training step, timed, to stand next to a long run's minutes.

    python bench/reference_step.py                       # before and after a full CIFAR-10 run
    python bench/reference_step.py --norm-layer batch    # the same step with another option of the run

The step never changes with the recipe: `convnext_cifar_3stage` as `train_cifar.py` builds it (fused), one
process's share of the batch (32 images at 32x32, one thread), forward, cross-entropy with label smoothing,
backward and an AdamW step. These shared machines run 20% faster or slower from one hour to the next: the
step's images per second, measured just before a run, tells a slow hour from a slow recipe. Options of the
run that change the network (``--norm-layer``, ``--stem-type``, ``--model``) time that network's step
instead, to compare two recipes' speed on the same hour. The best of ``--repeats`` rounds of ``--steps``
steps is reported, with the BLAS library that ran.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one data-parallel process's share of the cores

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from data_parallel import best_seconds_per_step, blas_summary  # noqa: E402  (bench/data_parallel.py)
from threadpoolctl import threadpool_limits  # noqa: E402

import autograd as ag  # noqa: E402
from tinyconvnext.build import build_fused_model, build_optimizer  # noqa: E402
from tinyconvnext.cli import make_parser, positive_int, run_command  # noqa: E402
from tinyconvnext.config import TrainConfig  # noqa: E402
from tinyconvnext.engine import forward_backward  # noqa: E402
from tinyconvnext.options import NORM_LAYERS, STEM_TYPES  # noqa: E402


def main(argv=None) -> int:
    parser = make_parser("python bench/reference_step.py", __doc__)
    parser.add_argument("--model", default="convnext_cifar_3stage", help="the network")
    parser.add_argument("--norm-layer", default="layer", choices=NORM_LAYERS, help="the blocks' norm")
    parser.add_argument("--stem-type", default="patch", choices=STEM_TYPES, help="the stem")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per step")
    parser.add_argument("--steps", type=positive_int, default=20, help="steps per timed round")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed rounds; the best counts")
    args = parser.parse_args(argv)
    config = TrainConfig(
        model=args.model, norm_layer=args.norm_layer, stem_type=args.stem_type, layer_scale=0.1, drop_path=0.1
    )
    ag.manual_seed(0)
    model = build_fused_model(config, 10, config.drop_path)
    optimizer = build_optimizer(config, model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, args.batch_size)

    def step():
        optimizer.zero_grad()
        forward_backward(model, x, y, "cpu", 0.1)
        optimizer.step()

    with threadpool_limits(1):  # one thread, as in each data-parallel process
        seconds = best_seconds_per_step(step, args.steps, args.repeats)
        blas = blas_summary()
    name = f"{args.model} (--norm-layer {args.norm_layer}, --stem-type {args.stem_type})"
    speed = f"{args.batch_size / seconds:.0f} images/s ({1e3 * seconds:.1f} ms a step)"
    print(f"{name}, batch {args.batch_size}: {speed}")
    print(f"BLAS: {blas}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
