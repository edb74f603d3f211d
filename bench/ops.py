"""Our ops against PyTorch's, forward and forward+backward, in one process: prints ours/PyTorch ratios.

    python bench/ops.py            # all shapes (a few minutes on 2 cores)
    python bench/ops.py --quick    # fewer repeats
    python bench/ops.py --only depthwise,gelu
    python bench/ops.py --device cuda   # CuPy against PyTorch CUDA on one GPU (batch 64 for ConvNeXt-T)

``conv3x3`` is the ResNet baseline's dense 3x3 conv (c -> c channels), the general im2col path;
``batch_norm_cl`` is ``--norm-layer batch``'s BatchNorm on channels-last activations (PyTorch's on the
permuted view of the same tensor); ``batch_norm`` the same on NCHW activations (the deep stem, ResNets);
``max_pool3x3`` their 3x3/s2 max pool.
Shapes: a CIFAR-sized ConvNeXt at batch 128 (stage 1: 64 channels at 16x16) and ConvNeXt-T stages 1
(96 channels at 56x56) and 4 (768 at 7x7) at batch 8 and 224x224. Absolute times drift on shared machines;
the ratio, measured back to back, is the number to read. Times are medians of interleaved repeats.
On the GPU the ConvNeXt-T shapes are at batch 64 (GPU_CONFIGS), and every timed call ends when the device
has finished its work.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from devices import (  # noqa: E402
    WARMUP,
    add_device_argument,
    add_malloc_argument,
    apply_malloc,
    describe_environment,
    interleaved_medians,
    require_device,
    synchronizers,
)

import autograd as ag  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext.cli import make_parser, run_command  # noqa: E402

CONFIGS = {
    "cifar-b128-s1": dict(n=128, c=64, h=16),
    "tiny-b8-s1": dict(n=8, c=96, h=56),
    "tiny-b8-s4": dict(n=8, c=768, h=7),
}
GPU_CONFIGS = {  # a GPU needs larger batches to be busy
    "cifar-b128-s1": dict(n=128, c=64, h=16),
    "tiny-b64-s1": dict(n=64, c=96, h=56),
    "tiny-b64-s4": dict(n=64, c=768, h=7),
}


def make_cases(cfg, device="cpu"):
    """(name, build) pairs; build(rng) -> (arrays, our function, torch function)."""
    n, c, h = cfg["n"], cfg["c"], cfg["h"]
    tokens = n * h * h

    def depthwise(rng):
        arrays = [
            rng.standard_normal((n, c, h, h)),
            rng.standard_normal((c, 1, 7, 7)) * 0.1,
            rng.standard_normal(c),
        ]
        return (
            arrays,
            (lambda x, w, b: F.conv2d(x, w, b, padding=3, groups=c)),
            (lambda x, w, b: TF.conv2d(x, w, b, padding=3, groups=c)),
        )

    def layer_norm(rng):
        arrays = [rng.standard_normal((tokens, c)), rng.standard_normal(c), rng.standard_normal(c)]
        return (
            arrays,
            (lambda x, w, b: F.layer_norm(x, (c,), w, b, 1e-6)),
            (lambda x, w, b: TF.layer_norm(x, (c,), w, b, 1e-6)),
        )

    def layer_norm_cf(rng):
        arrays = [rng.standard_normal((n, c, h, h)), rng.standard_normal(c), rng.standard_normal(c)]

        def theirs(x, w, b):  # the official channels_first LayerNorm, written out as in models/convnext.py
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            return w[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + b[:, None, None]

        return arrays, (lambda x, w, b: F.layer_norm_channels_first(x, w, b, 1e-6)), theirs

    def linear(rng):
        arrays = [
            rng.standard_normal((tokens, c)),
            rng.standard_normal((4 * c, c)) * 0.05,
            rng.standard_normal(4 * c),
        ]
        return arrays, F.linear, TF.linear

    def gelu(rng):
        return [rng.standard_normal((tokens, 4 * c))], F.gelu, TF.gelu

    def cross_entropy(rng):
        k = 10 if n == 128 else 1000
        labels = rng.integers(0, k, size=n)
        ours_labels, torch_labels = ag.tensor(labels, device=device), torch.from_numpy(labels).to(device)
        return (
            [rng.standard_normal((n, k))],
            (lambda z: F.cross_entropy(z, ours_labels, label_smoothing=0.1)),
            (lambda z: TF.cross_entropy(z, torch_labels, label_smoothing=0.1)),
        )

    def patchify(rng):
        k = 2
        arrays = [
            rng.standard_normal((n, c, h, h)),
            rng.standard_normal((2 * c, c, k, k)) * 0.05,
            rng.standard_normal(2 * c),
        ]
        return (
            arrays,
            (lambda x, w, b: F.conv2d(x, w, b, stride=k)),
            (lambda x, w, b: TF.conv2d(x, w, b, stride=k)),
        )

    def conv3x3(rng):  # the ResNet baseline's dense conv (the im2col path)
        arrays = [
            rng.standard_normal((n, c, h, h)),
            rng.standard_normal((c, c, 3, 3)) * 0.05,
            rng.standard_normal(c),
        ]
        return (
            arrays,
            (lambda x, w, b: F.conv2d(x, w, b, padding=1)),
            (lambda x, w, b: TF.conv2d(x, w, b, padding=1)),
        )

    def batch_norm_cl(
        rng,
    ):  # ConvNeXt(norm_layer="batch")'s norm: training-mode BatchNorm on NHWC activations
        arrays = [rng.standard_normal((n, h, h, c)), rng.standard_normal(c), rng.standard_normal(c)]
        return (
            arrays,
            (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, channels_last=True)),
            (
                lambda x, w, b: TF.batch_norm(x.permute(0, 3, 1, 2), None, None, w, b, training=True).permute(
                    0, 2, 3, 1
                )
            ),
        )

    def batch_norm(rng):  # the deep stem's and ResNets' norm: training-mode BatchNorm on NCHW activations
        arrays = [rng.standard_normal((n, c, h, h)), rng.standard_normal(c), rng.standard_normal(c)]
        return (
            arrays,
            (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
            (lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True)),
        )

    def max_pool(rng):  # the deep stem's and ResNets' 3x3/s2 max pool
        arrays = [rng.standard_normal((n, c, h, h))]
        return arrays, (lambda x: F.max_pool2d(x, 3, 2, 1)), (lambda x: TF.max_pool2d(x, 3, 2, 1))

    return [
        ("depthwise7x7", depthwise),
        ("layer_norm", layer_norm),
        ("layer_norm_cf", layer_norm_cf),
        ("linear", linear),
        ("gelu", gelu),
        ("cross_entropy", cross_entropy),
        ("patchify2x2", patchify),
        ("conv3x3", conv3x3),
        ("batch_norm_cl", batch_norm_cl),
        ("batch_norm", batch_norm),
        ("max_pool3x3", max_pool),
    ]


def bench_case(arrays, ours, theirs, repeats, device="cpu"):
    """Median (ours, torch) seconds of the forward alone and of forward+backward, on ``device``."""
    arrays = [a.astype(np.float32) for a in arrays]
    ours_in = [ag.tensor(a, device=device, requires_grad=True) for a in arrays]
    torch_in = [torch.tensor(a, device=device, requires_grad=True) for a in arrays]
    out_shape = ours(*ours_in).shape
    upstream = np.random.default_rng(0).standard_normal(out_shape).astype(np.float32)
    upstream_ours, upstream_t = ag.tensor(upstream, device=device), torch.from_numpy(upstream).to(device)
    sync_ours, sync_torch = synchronizers(device)

    def ours_fwd():
        with ag.no_grad():
            ours(*ours_in)

    def torch_fwd():
        with torch.no_grad():
            theirs(*torch_in)

    def ours_fwd_bwd():
        for t in ours_in:
            t.grad = None
        ours(*ours_in).backward(upstream_ours)

    def torch_fwd_bwd():
        for t in torch_in:
            t.grad = None
        theirs(*torch_in).backward(upstream_t)

    return {
        label: interleaved_medians(a, b, repeats, sync_ours, sync_torch, warmup=WARMUP[device])
        for label, a, b in (("fwd", ours_fwd, torch_fwd), ("fwd+bwd", ours_fwd_bwd, torch_fwd_bwd))
    }


def main(argv=None):
    parser = make_parser("python bench/ops.py", __doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", default="", help="comma-separated op names ('': every op)")
    parser.add_argument(
        "--configs",
        default=None,
        help=f"comma-separated shape configs (None: on cpu {','.join(CONFIGS)}; on cuda "
        f"{','.join(GPU_CONFIGS)})",
    )
    add_device_argument(parser)
    add_malloc_argument(parser)
    args = parser.parse_args(argv)
    require_device(args.device)
    apply_malloc(args.malloc)
    configs = {**CONFIGS, **GPU_CONFIGS}
    default_configs = GPU_CONFIGS if args.device == "cuda" else CONFIGS
    names = args.configs.split(",") if args.configs else list(default_configs)
    unknown = [name for name in names if name not in configs]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(configs)}")
    repeats = 5 if args.quick else 15
    only = set(filter(None, args.only.split(",")))
    rng = np.random.default_rng(0)
    print(describe_environment(args.device) + f"; malloc {args.malloc}")
    print(
        f"\n{'config':15s} {'op':15s} {'ours fwd':>10s} {'torch fwd':>10s} {'ratio':>6s}   "
        f"{'ours f+b':>10s} {'torch f+b':>10s} {'ratio':>6s}"
    )
    for config in names:
        for name, build in make_cases(configs[config], args.device):
            if only and name not in only:
                continue
            arrays, ours, theirs = build(rng)
            r = bench_case(arrays, ours, theirs, repeats, args.device)
            (of, tf), (ob, tb) = r["fwd"], r["fwd+bwd"]
            print(
                f"{config:15s} {name:15s} {of * 1e3:8.2f}ms {tf * 1e3:8.2f}ms {of / tf:6.2f}   "
                f"{ob * 1e3:8.2f}ms {tb * 1e3:8.2f}ms {ob / tb:6.2f}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(run_command(main))
