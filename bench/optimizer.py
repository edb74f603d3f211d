"""One AdamW step over a model's parameters: ours (fused Numba kernel per parameter, or one call for all of
them laid flat) against PyTorch.

    python bench/optimizer.py  # convnext_cifar_3stage: what train_cifar.py trains
    python bench/optimizer.py --model convnext_tiny --threads 1

In data-parallel training (``tinyconvnext/parallel.py``) the main process steps the optimizer while the
workers wait, so this time is paid in full every step. A CIFAR model has many tiny parameters (biases,
norm weights, layer-scale gammas): the time per call matters as much as the time per element.
Ours runs twice: on the model's own arrays (one kernel call per parameter) and on the same parameters laid
side by side in one buffer, as ``DataParallel`` keeps them (``autograd/optim/flat.py``: one multi-threaded
call for all). PyTorch is timed one parameter at a time (``foreach=False``, its default for CPU tensors) and
with ``foreach=True`` (a few multi-tensor kernels for all the parameters, its default on the GPU). Times are
the best of 5 rounds of 20 steps; ratio = ours / PyTorch (below 1: ours is faster).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from data_parallel import best_seconds_per_step, blas_summary  # noqa: E402  (bench/data_parallel.py)

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.optim.flat import consecutive_views  # noqa: E402
from tinyconvnext.cli import make_parser, non_negative_int, run_command  # noqa: E402
from tinyconvnext.variants import create_model  # noqa: E402


def lay_flat(params, grads):
    """Move the parameters' data and gradients into two flat buffers, one view each, as DataParallel does."""
    total, shapes = sum(p.data.size for p in params), [p.shape for p in params]
    data, grad = np.empty(total, np.float32), np.empty(total, np.float32)
    for p, g, view, grad_view in zip(
        params, grads, consecutive_views(data, shapes), consecutive_views(grad, shapes), strict=False
    ):
        view[...], grad_view[...] = p.data, g
        p.data, p.grad = view, ag.Tensor(grad_view)


def main(argv=None):
    parser = make_parser("python bench/optimizer.py", __doc__)
    parser.add_argument("--model", default="convnext_cifar_3stage", help="the model whose parameters step")
    parser.add_argument(
        "--threads", type=non_negative_int, default=0, help="threads for Numba and PyTorch (0: their default)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    model = create_model(args.model, num_classes=10)
    named = list(model.named_parameters())
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(p.shape).astype(np.float32) for _, p in named]
    for (_, p), g in zip(named, grads, strict=False):
        p.grad = ag.tensor(g)
    ours = optim.AdamW(optim.weight_decay_groups(named, 0.05), lr=1e-3)

    def torch_optimizer(foreach):
        params = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for _, p in named]
        for p, g in zip(params, grads, strict=False):
            p.grad = torch.from_numpy(g)
        decay = [
            p for p, (n, _) in zip(params, named, strict=False) if p.ndim > 1 and not n.endswith("gamma")
        ]
        rest = [p for p, (n, _) in zip(params, named, strict=False) if p.ndim <= 1 or n.endswith("gamma")]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
            lr=1e-3,
            foreach=foreach,
        )

    sizes = [p.data.size for _, p in named]
    print(
        f"{args.model}: {len(sizes)} parameters, {sum(sizes):,} elements, {sum(s < 1000 for s in sizes)} of "
        f"them under 1,000 elements; {blas_summary()}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    ours_ms = 1000 * best_seconds_per_step(ours.step, steps=20, repeats=5)
    print(f"{'ours (fused Numba, per parameter)':42s} {ours_ms:7.2f} ms")
    flat_model = create_model(args.model, num_classes=10)
    flat_named = list(flat_model.named_parameters())
    lay_flat([p for _, p in flat_named], grads)
    flat = optim.AdamW(optim.weight_decay_groups(flat_named, 0.05), lr=1e-3)
    flat_ms = 1000 * best_seconds_per_step(flat.step, steps=20, repeats=5)
    assert flat._flat is not None, "the flat path was not taken"
    print(f"{'ours (fused Numba, parameters laid flat)':42s} {flat_ms:7.2f} ms")
    for foreach in (False, True):
        torch_ms = 1000 * best_seconds_per_step(torch_optimizer(foreach).step, steps=20, repeats=5)
        label = "PyTorch AdamW, foreach=True" if foreach else "PyTorch AdamW, foreach=False (CPU default)"
        print(
            f"{label:42s} {torch_ms:7.2f} ms   ours / PyTorch {ours_ms / torch_ms:.2f} per parameter, "
            f"{flat_ms / torch_ms:.2f} flat"
        )


if __name__ == "__main__":
    sys.exit(run_command(main))
