"""Our ops against PyTorch's, forward and forward+backward, in one process: prints ours/PyTorch ratios.

    python bench/ops.py            # all shapes (a few minutes on 2 cores)
    python bench/ops.py --quick    # fewer repeats
    python bench/ops.py --only depthwise,gelu

Shapes: a CIFAR-sized ConvNeXt at batch 128 (stage 1: 64 channels at 16x16) and ConvNeXt-T stages 1
(96 channels at 56x56) and 4 (768 at 7x7) at batch 8 and 224x224. Absolute times drift on shared machines;
the ratio, measured back to back, is the number to read. Times are medians of interleaved repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import autograd as ag  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

CONFIGS = {
    "cifar-b128-s1": dict(n=128, c=64, h=16),
    "tiny-b8-s1": dict(n=8, c=96, h=56),
    "tiny-b8-s4": dict(n=8, c=768, h=7),
}


def make_cases(cfg):
    """(name, build) pairs; build(rng) -> (arrays, our function, torch function)."""
    n, c, h = cfg["n"], cfg["c"], cfg["h"]
    tokens = n * h * h

    def depthwise(rng):
        arrays = [rng.standard_normal((n, c, h, h)), rng.standard_normal((c, 1, 7, 7)) * 0.1, rng.standard_normal(c)]
        return arrays, (lambda x, w, b: F.conv2d(x, w, b, padding=3, groups=c)), \
            (lambda x, w, b: TF.conv2d(x, w, b, padding=3, groups=c))

    def layer_norm(rng):
        arrays = [rng.standard_normal((tokens, c)), rng.standard_normal(c), rng.standard_normal(c)]
        return arrays, (lambda x, w, b: F.layer_norm(x, (c,), w, b, 1e-6)), \
            (lambda x, w, b: TF.layer_norm(x, (c,), w, b, 1e-6))

    def layer_norm_cf(rng):
        arrays = [rng.standard_normal((n, c, h, h)), rng.standard_normal(c), rng.standard_normal(c)]

        def theirs(x, w, b):  # the official channels_first LayerNorm, written out as in models/convnext.py
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            return w[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + b[:, None, None]

        return arrays, (lambda x, w, b: F.layer_norm_channels_first(x, w, b, 1e-6)), theirs

    def linear(rng):
        arrays = [rng.standard_normal((tokens, c)), rng.standard_normal((4 * c, c)) * 0.05, rng.standard_normal(4 * c)]
        return arrays, F.linear, TF.linear

    def gelu(rng):
        return [rng.standard_normal((tokens, 4 * c))], F.gelu, TF.gelu

    def cross_entropy(rng):
        k = 10 if n == 128 else 1000
        labels = rng.integers(0, k, size=n)
        return [rng.standard_normal((n, k))], (lambda z: F.cross_entropy(z, labels, label_smoothing=0.1)), \
            (lambda z: TF.cross_entropy(z, torch.from_numpy(labels), label_smoothing=0.1))

    def patchify(rng):
        k = 2
        arrays = [rng.standard_normal((n, c, h, h)), rng.standard_normal((2 * c, c, k, k)) * 0.05, rng.standard_normal(2 * c)]
        return arrays, (lambda x, w, b: F.conv2d(x, w, b, stride=k)), (lambda x, w, b: TF.conv2d(x, w, b, stride=k))

    return [("depthwise7x7", depthwise), ("layer_norm", layer_norm), ("layer_norm_cf", layer_norm_cf),
            ("linear", linear), ("gelu", gelu), ("cross_entropy", cross_entropy), ("patchify2x2", patchify)]


def _timer(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_case(arrays, ours, theirs, repeats):
    arrays = [a.astype(np.float32) for a in arrays]
    ours_in = [ag.tensor(a, requires_grad=True) for a in arrays]
    torch_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_shape = ours(*ours_in).shape
    upstream = np.random.default_rng(0).standard_normal(out_shape).astype(np.float32)
    upstream_t = torch.from_numpy(upstream)

    def ours_fwd():
        with ag.no_grad():
            ours(*ours_in)

    def torch_fwd():
        with torch.no_grad():
            theirs(*torch_in)

    def ours_fwd_bwd():
        for t in ours_in:
            t.grad = None
        ours(*ours_in).backward(upstream)

    def torch_fwd_bwd():
        for t in torch_in:
            t.grad = None
        theirs(*torch_in).backward(upstream_t)

    results = {}
    for label, a, b in (("fwd", ours_fwd, torch_fwd), ("fwd+bwd", ours_fwd_bwd, torch_fwd_bwd)):
        a(), b(), a(), b()  # warm up (JIT compilation, allocator)
        ta, tb = [], []
        for _ in range(repeats):  # interleave, so drift hits both alike
            ta += _timer(a, 1)
            tb += _timer(b, 1)
        results[label] = (statistics.median(ta), statistics.median(tb))
    return results


def describe_environment() -> str:
    lines = [f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
             f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"]
    try:
        import numba

        lines.append(f"numba {numba.__version__}, threads {numba.get_num_threads()}")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')} kernel={info.get('architecture')} "
                         f"threads={info.get('num_threads')} ({os.path.basename(info.get('filepath', ''))})")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS kernel unknown")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "AUTOGRAD_KERNELS"):
        lines.append(f"{var}={os.environ.get(var, '(unset)')}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", default="", help="comma-separated op names")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated shape configs")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 15
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    print(describe_environment())
    print(f"\n{'config':15s} {'op':15s} {'ours fwd':>10s} {'torch fwd':>10s} {'ratio':>6s}   "
          f"{'ours f+b':>10s} {'torch f+b':>10s} {'ratio':>6s}")
    for config in args.configs.split(","):
        for name, build in make_cases(CONFIGS[config]):
            if only and name not in only:
                continue
            arrays, ours, theirs = build(rng)
            r = bench_case(arrays, ours, theirs, repeats)
            (of, tf), (ob, tb) = r["fwd"], r["fwd+bwd"]
            print(f"{config:15s} {name:15s} {of * 1e3:8.2f}ms {tf * 1e3:8.2f}ms {of / tf:6.2f}   "
                  f"{ob * 1e3:8.2f}ms {tb * 1e3:8.2f}ms {ob / tb:6.2f}", flush=True)


if __name__ == "__main__":
    main()
