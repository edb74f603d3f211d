"""Time the Numba layer-norm, GELU and cross-entropy kernels against PyTorch (CPU, float32).

For each case: forward alone, and forward + backward (ours: the forward kernel then the backward kernel;
PyTorch: the functional op on tensors that require grad, then .backward). The time is the best of a few
repeats of a short batch of calls, so one case takes well under a second. Ratio = ours / PyTorch
(below 1: ours is faster).

Run: cd /work/main && /work/venv/bin/python bench/norm_act_kernels.py [--quick] [--threads N]

On a machine shared with other jobs, a parallel region stalls whenever another process holds a core
(steps of one scheduler time slice, ~8 ms, show up in the numbers); run it when the machine is idle,
or with --threads 1.
"""

import os
import sys
import time

import numba
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autograd.kernels.cpu import cross_entropy, gelu, layer_norm  # noqa: E402
from tinyconvnext.cli import make_parser, non_negative_int, run_command  # noqa: E402

F = torch.nn.functional
EPS = 1e-6


def best_time(fn, budget):
    """Best seconds per call over repeats of a batch of calls, spending about `budget` seconds."""
    fn()  # warm up (compilation, caches)
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(budget / 5 / once))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def compare(name, ours_fwd, ours_fb, torch_fwd, torch_fb, budget):
    """Time ours, pause, then time PyTorch. Both runtimes keep their OpenMP threads spinning for a while
    after a parallel region; on a machine with few cores, calls that alternate between the two
    runtimes fight those spinning threads, so the two are timed apart."""
    times = [best_time(ours_fwd, budget), best_time(ours_fb, budget)]
    time.sleep(0.05)
    times += [best_time(torch_fwd, budget), best_time(torch_fb, budget)]
    time.sleep(0.05)
    report(name, times[0], times[2], times[1], times[3])


def report(name, ours_fwd, torch_fwd, ours_fb, torch_fb):
    def fmt(seconds):
        return f"{seconds * 1e3:9.3f}" if seconds >= 1e-3 else f"{seconds * 1e6:7.1f}us"

    print(
        f"{name:44s} fwd {fmt(ours_fwd)} vs {fmt(torch_fwd)}  x{ours_fwd / torch_fwd:5.2f}   "
        f"fwd+bwd {fmt(ours_fb)} vs {fmt(torch_fb)}  x{ours_fb / torch_fb:5.2f}"
    )


def bench_layer_norm(rows, size, budget, rng):
    x = rng.standard_normal((rows, size)).astype(np.float32)
    grad_y = rng.standard_normal((rows, size)).astype(np.float32)
    weight = rng.standard_normal(size).astype(np.float32)
    bias = rng.standard_normal(size).astype(np.float32)

    def ours_fwd():
        return layer_norm.layer_norm_forward(x, weight, bias, EPS)

    def ours_fb():
        y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
        return layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)

    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, weight, bias))
    gt = torch.from_numpy(grad_y)

    def torch_fwd():
        with torch.no_grad():
            return F.layer_norm(xt, (size,), wt, bt, EPS)

    def torch_fb():
        xt.grad = wt.grad = bt.grad = None
        F.layer_norm(xt, (size,), wt, bt, EPS).backward(gt)

    compare(f"layer_norm rows ({rows}, {size})", ours_fwd, ours_fb, torch_fwd, torch_fb, budget)


def bench_layer_norm_channels_first(shape, budget, rng):
    channels = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    grad_y = rng.standard_normal(shape).astype(np.float32)
    weight = rng.standard_normal(channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)

    def ours_fwd():
        return layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)

    def ours_fb():
        y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
        return layer_norm.layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd)

    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, weight, bias))
    gt = torch.from_numpy(grad_y)

    def torch_op():
        # What ConvNeXt's channels-first LayerNorm does in PyTorch: permute, layer_norm, permute back.
        return F.layer_norm(xt.permute(0, 2, 3, 1), (channels,), wt, bt, EPS).permute(0, 3, 1, 2)

    def torch_fwd():
        with torch.no_grad():
            return torch_op().contiguous()

    def torch_fb():
        xt.grad = wt.grad = bt.grad = None
        torch_op().backward(gt)

    compare(f"layer_norm channels-first {tuple(shape)}", ours_fwd, ours_fb, torch_fwd, torch_fb, budget)


def bench_gelu(shape, approximate, budget, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    grad_y = rng.standard_normal(shape).astype(np.float32)

    def ours_fwd():
        return gelu.gelu_forward(x, approximate)

    def ours_fb():
        gelu.gelu_forward(x, approximate)
        return gelu.gelu_backward(x, grad_y, approximate)

    xt = torch.from_numpy(x).requires_grad_()
    gt = torch.from_numpy(grad_y)

    def torch_fwd():
        with torch.no_grad():
            return F.gelu(xt, approximate=approximate)

    def torch_fb():
        xt.grad = None
        F.gelu(xt, approximate=approximate).backward(gt)

    compare(f"gelu[{approximate}] {tuple(shape)}", ours_fwd, ours_fb, torch_fwd, torch_fb, budget)


def bench_cross_entropy(rows, classes, label_smoothing, budget, rng):
    logits = rng.standard_normal((rows, classes)).astype(np.float32)
    target = rng.integers(0, classes, rows)
    one = np.float32(1.0)

    def ours_fwd():
        return cross_entropy.cross_entropy_forward(logits, target, label_smoothing)

    def ours_fb():
        loss, probabilities = cross_entropy.cross_entropy_forward(logits, target, label_smoothing)
        return cross_entropy.cross_entropy_backward(one, probabilities, target, label_smoothing)

    zt = torch.from_numpy(logits).requires_grad_()
    tt = torch.from_numpy(target)

    def torch_fwd():
        with torch.no_grad():
            return F.cross_entropy(zt, tt, label_smoothing=label_smoothing)

    def torch_fb():
        zt.grad = None
        F.cross_entropy(zt, tt, label_smoothing=label_smoothing).backward()

    compare(
        f"cross_entropy ({rows}, {classes}) smoothing={label_smoothing}",
        ours_fwd,
        ours_fb,
        torch_fwd,
        torch_fb,
        budget,
    )


def main(argv=None):
    parser = make_parser("python bench/norm_act_kernels.py", __doc__)
    parser.add_argument("--quick", action="store_true", help="shorter timing budget per measurement")
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="threads for both Numba and PyTorch (0: leave each at its own default)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    budget = 0.05 if args.quick else 0.15
    rng = np.random.default_rng(0)
    print(
        f"threads: numba {numba.get_num_threads()}, torch {torch.get_num_threads()}; "
        f"times: ours vs PyTorch (ms unless marked us), ratio x = ours / PyTorch"
    )

    bench_layer_norm(128 * 8 * 8, 256, budget, rng)
    bench_layer_norm(8 * 56 * 56, 96, budget, rng)
    bench_layer_norm(8 * 7 * 7, 768, budget, rng)
    bench_layer_norm_channels_first((128, 64, 16, 16), budget, rng)
    for approximate in ("none", "tanh"):
        bench_gelu((128 * 8 * 8, 1024), approximate, budget, rng)
        bench_gelu((8 * 56 * 56, 384), approximate, budget, rng)
    for label_smoothing in (0.0, 0.1):
        bench_cross_entropy(128, 10, label_smoothing, budget, rng)
        bench_cross_entropy(128, 1000, label_smoothing, budget, rng)
    print(f"numba threading layer: {numba.threading_layer()}")


if __name__ == "__main__":
    sys.exit(run_command(main))
