"""Time the depthwise conv2d kernels against torch.nn.functional.conv2d(groups=C), float32, 7x7, pad 3.

    /work/venv/bin/python bench/depthwise_kernel.py [--reps 15] [--layout nchw|nhwc|both] [--shapes small|all]

Prints, per shape and layout, the median wall time (time.perf_counter) of our forward and of our
forward+backward (grad x, grad w, grad b), the same for torch (NHWC: channels_last tensors), and the
ratio ours/torch (< 1 means we are faster). The machine is shared: run it when it is quiet, and trust
ratios measured in one run more than absolute times.
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autograd.kernels.cpu import depthwise_conv2d as dw  # noqa: E402
from tinyconvnext.cli import make_parser, positive_int, run_command  # noqa: E402

SHAPES = [(128, 64, 16, 16), (8, 96, 56, 56), (8, 768, 7, 7)]


def median_ms(fn, reps):
    fn()  # warm-up (and JIT / cache load)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def bench_shape(shape, layout, reps, torch):
    N, C, H, W = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((C, 7, 7), dtype=np.float32) * 0.1
    b = rng.standard_normal(C, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    if layout == "nchw":
        fwd = lambda: dw.depthwise_conv2d_nchw_forward(x, w, b, 1, 3)  # noqa: E731

        def fb():
            dw.depthwise_conv2d_nchw_forward(x, w, b, 1, 3)
            dw.depthwise_conv2d_nchw_backward(x, w, g, 1, 3, True)
    else:
        xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        wh = np.ascontiguousarray(w.transpose(1, 2, 0))
        gh = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
        fwd = lambda: dw.depthwise_conv2d_nhwc_forward(xh, wh, b, 1, 3)  # noqa: E731

        def fb():
            dw.depthwise_conv2d_nhwc_forward(xh, wh, b, 1, 3)
            dw.depthwise_conv2d_nhwc_backward(xh, wh, gh, 1, 3, True)

    ours_f = median_ms(fwd, reps)
    ours_fb = median_ms(fb, reps)
    line = f"{layout.upper()} {str(shape):18s} ours fwd {ours_f:8.3f} ms  fwd+bwd {ours_fb:8.3f} ms"
    if torch is not None:
        F = torch.nn.functional
        mf = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        tx = torch.from_numpy(x).contiguous(memory_format=mf).requires_grad_(True)
        tw = torch.from_numpy(w.reshape(C, 1, 7, 7).copy()).requires_grad_(True)
        tb = torch.from_numpy(b).requires_grad_(True)
        tg = torch.from_numpy(g).contiguous(memory_format=mf)

        def tfwd():
            with torch.no_grad():
                F.conv2d(tx, tw, tb, padding=3, groups=C)

        def tfb():
            y = F.conv2d(tx, tw, tb, padding=3, groups=C)
            torch.autograd.grad(y, (tx, tw, tb), tg)

        t_f = median_ms(tfwd, reps)
        t_fb = median_ms(tfb, reps)
        line += (
            f" | torch fwd {t_f:8.3f} ms  fwd+bwd {t_fb:8.3f} ms"
            f" | ratio fwd {ours_f / t_f:5.2f}  fwd+bwd {ours_fb / t_fb:5.2f}"
        )
    print(line, flush=True)


def main(argv=None):
    ap = make_parser("python bench/depthwise_kernel.py", __doc__)
    ap.add_argument("--reps", type=positive_int, default=15, help="timed calls per kernel and shape")
    ap.add_argument(
        "--layout", choices=["nchw", "nhwc", "both"], default="both", help="memory layout(s) of the input"
    )
    ap.add_argument(
        "--shapes", choices=["small", "all"], default="all", help="small: the first shapes only (quick)"
    )
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    import numba

    print(
        f"numba {numba.__version__}, threads {numba.get_num_threads()}, layer "
        f"{numba.config.THREADING_LAYER}; torch {torch.__version__ if torch else 'absent'} "
        f"threads {torch.get_num_threads() if torch else '-'}; cpus {os.cpu_count()}"
    )
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            print(
                f"  threadpool: {info.get('internal_api')} {info.get('num_threads')} threads "
                f"({os.path.basename(info.get('filepath', ''))})"
            )
    except ImportError:
        pass
    shapes = SHAPES[:1] if args.shapes == "small" else SHAPES
    layouts = ["nchw", "nhwc"] if args.layout == "both" else [args.layout]
    for layout in layouts:
        for shape in shapes:
            bench_shape(shape, layout, args.reps, torch)
    try:
        print(f"numba threading layer used: {numba.threading_layer()}")
    except ValueError:
        pass


if __name__ == "__main__":
    sys.exit(run_command(main))
