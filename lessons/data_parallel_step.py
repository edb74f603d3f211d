"""One training step split over two worker processes (`tinyconvnext.parallel.DataParallel`), for lesson 13.

    python lessons/data_parallel_step.py --batch 32 --steps 2

It checks that the split step gives the gradients of one process, then measures images per second of a
training step (forward, backward, AdamW) in one process and over two single-threaded processes. It is a
script of its own because the workers are spawned: each fresh interpreter re-runs the main script, so the
work of a script that starts them sits under `if __name__ == "__main__":`.
"""

import functools
import os
import sys
import time

import numpy as np

import autograd as ag
from autograd import optim
from autograd.nn import functional as F
from tinyconvnext import create_model
from tinyconvnext.cli import make_parser, positive_int, run_command
from tinyconvnext.parallel import DataParallel

MODEL = "convnext_cifar_atto"


def best_seconds(step, repeats):
    """The best time of `step()` over `repeats` calls, after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = make_parser("lessons/data_parallel_step.py", __doc__)
    parser.add_argument("--batch", type=positive_int, default=32, help="images per step (at least 2)")
    parser.add_argument("--steps", type=positive_int, default=2, help="timed steps (best of)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, size=args.batch)
    make_model = functools.partial(create_model, MODEL, num_classes=10)  # the workers build their copies
    ag.manual_seed(0)
    model = make_model()
    optimizer = optim.AdamW(model.parameters(), lr=1e-3)

    def one_process_step():
        loss = F.cross_entropy(model(ag.tensor(images)), ag.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    loss = F.cross_entropy(model(ag.tensor(images)), ag.tensor(labels))
    model.zero_grad()
    loss.backward()
    one_process_grads = [p.grad.numpy().copy() for p in model.parameters()]
    with DataParallel(model, make_model, 2, args.batch, images.shape[1:], 10) as parallel:
        parallel_loss, _ = parallel.train_step(images, labels)  # the summed gradients are in .grad now
        difference = max(
            float(np.abs(p.grad.numpy() - g).max())
            for p, g in zip(model.parameters(), one_process_grads, strict=True)
        )
        print(
            f"a batch of {args.batch} split over 2 processes ({parallel.slice_size} images each): loss "
            f"{parallel_loss:.6f} against one process's {float(loss.item()):.6f}; largest difference of "
            f"any gradient {difference:.1e}"
        )

        def two_process_step():
            parallel.train_step(images, labels)
            optimizer.step()

        two = args.batch / best_seconds(two_process_step, args.steps)
    one = args.batch / best_seconds(one_process_step, args.steps)  # the model keeps the weights' copy
    print(
        f"training steps of {MODEL}, batch {args.batch}, best of {args.steps}: one process (default "
        f"threads) {one:.0f} images/s, two single-threaded processes {two:.0f} images/s "
        f"({two / one:.2f}x) on {os.cpu_count()} logical cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
