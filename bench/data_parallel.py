"""The CIFAR training step on all CPU cores: one process with threads, against N single-threaded processes.

    python bench/data_parallel.py                    # convnext_cifar_atto, batch 128, 2 processes
    python bench/data_parallel.py --processes 4 --steps 30
    python bench/data_parallel.py --malloc default   # glibc's default: freed memory goes back to the OS

One step is what ``train_cifar.py`` does per batch: forward, cross-entropy with label smoothing, backward,
AdamW. Timed in this one process, one after another, best of ``--repeats`` rounds of ``--steps`` steps:
  - PyTorch (the twin from tests/torch_convnext.py), with its default threads;
  - ours, one process, with the default threads (BLAS and Numba);
  - ours, ``tinyconvnext.parallel.DataParallel`` over ``--processes`` single-threaded worker processes.
With ``--malloc retain`` (the default, as in training) the process and the workers keep freed memory for
reuse (``autograd/memory.py``); PyTorch, in the same process, gets the same allocator settings.
Reported as images per second and as ratios of times (ours / PyTorch: below 1 is faster than PyTorch).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from devices import add_malloc_argument, apply_malloc  # noqa: E402

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext.cli import make_parser, positive_int, run_command  # noqa: E402
from tinyconvnext.parallel import DataParallel  # noqa: E402
from tinyconvnext.variants import create_model  # noqa: E402


def fused_model(model_name):
    """The model as training builds it: its fused ops swapped in (``model.fuse()``)."""
    return create_model(model_name, num_classes=10, layer_scale_init_value=0.1).fuse()


def best_seconds_per_step(step, steps, repeats):
    step()  # warm-up: kernel compilation, allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def ours_steps(model_name, x, y, processes):
    make = functools.partial(fused_model, model_name)
    ag.manual_seed(0)
    model = make()
    optimizer = optim.AdamW(optim.weight_decay_groups(model.named_parameters(), 0.05), lr=1e-3)

    def one_process():
        loss = F.cross_entropy(model(ag.tensor(x)), ag.tensor(y), label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    if processes <= 1:
        return one_process, None
    parallel = DataParallel(model, make, processes, len(x), x.shape[1:], 10)

    def data_parallel():
        parallel.train_step(x, y, label_smoothing=0.1)
        optimizer.step()

    return data_parallel, parallel


def torch_step(model_name, x, y):
    import torch
    from torch_convnext import TorchConvNeXt

    from tinyconvnext.variants import VARIANTS

    model = TorchConvNeXt(num_classes=10, layer_scale=0.1, **VARIANTS[model_name])
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3
    )
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(tx), ty, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step, torch.get_num_threads()


def blas_summary():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(
        f"{info['internal_api']} {info.get('version')} ({info.get('architecture')}, "
        f"{info['num_threads']} threads)"
        for info in threadpool_info()
    )


def main(argv=None):
    parser = make_parser("python bench/data_parallel.py", __doc__)
    parser.add_argument("--model", default="convnext_cifar_atto", help="the model variant trained")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="images per training step")
    parser.add_argument(
        "--processes", type=positive_int, default=2, help="worker processes of the data-parallel run"
    )
    parser.add_argument("--steps", type=positive_int, default=10, help="training steps per timing")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timings, of which the best counts")
    add_malloc_argument(parser)
    args = parser.parse_args(argv)
    apply_malloc(args.malloc)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=args.batch_size)
    print(
        f"{args.model}, batch {args.batch_size}, malloc {args.malloc}; thread pools: {blas_summary()}",
        flush=True,
    )

    step, threads = torch_step(args.model, x, y)
    torch_seconds = best_seconds_per_step(step, args.steps, args.repeats)
    print(
        f"PyTorch, 1 process, {threads} threads: {args.batch_size / torch_seconds:7.0f} images/s", flush=True
    )

    step, _ = ours_steps(args.model, x, y, 1)
    one_seconds = best_seconds_per_step(step, args.steps, args.repeats)
    print(
        f"ours, 1 process, default threads:  {args.batch_size / one_seconds:7.0f} images/s  "
        f"(ours / PyTorch time {one_seconds / torch_seconds:.2f})",
        flush=True,
    )

    step, parallel = ours_steps(args.model, x, y, args.processes)
    try:
        dp_seconds = best_seconds_per_step(step, args.steps, args.repeats)
    finally:
        if parallel is not None:
            parallel.close()
    print(
        f"ours, {args.processes} processes x 1 thread:  {args.batch_size / dp_seconds:7.0f} images/s  "
        f"(ours / PyTorch time {dp_seconds / torch_seconds:.2f}; "
        f"{one_seconds / dp_seconds:.2f}x one process)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(run_command(main))
