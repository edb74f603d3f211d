"""What the benchmarks share: the machine's description, the device (CPU, or a GPU for both frameworks)
and timing that waits for the device.

    parser = make_parser("python bench/ops.py", __doc__)  # tinyconvnext/cli.py: one-line errors
    add_device_argument(parser); add_malloc_argument(parser)
    apply_malloc(args.malloc)                            # freed memory kept for reuse, as in training
    require_device(args.device)                          # a clear exit when the GPU path cannot run
    sync_ours, sync_torch = synchronizers(args.device)   # no-ops on the CPU
    ours, theirs = interleaved_medians(our_step, torch_step, repeats, sync_ours, sync_torch)

GPU work is asynchronous: a call returns once its kernels are queued. So a GPU step is timed from a
synchronised device to a synchronised device, and each framework waits for its own work.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autograd.backend import cupy_available  # noqa: E402

DEVICES = ("cpu", "cuda")
WARMUP = {"cpu": 2, "cuda": 5}  # untimed calls of each step first: JIT and kernel compilation, allocators


def add_device_argument(parser) -> None:
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="cpu: NumPy against PyTorch on the CPU; cuda: CuPy against PyTorch CUDA on the same GPU",
    )


def add_malloc_argument(parser) -> None:
    parser.add_argument(
        "--malloc",
        choices=("retain", "default"),
        default="retain",
        help="retain: keep freed memory for reuse, as training does (autograd/memory.py); "
        "default: glibc's own settings",
    )


def apply_malloc(choice: str) -> None:
    """Set this process's allocator as ``--malloc`` asks (before the first large array). Both frameworks
    share the process, so both get the same setting."""
    if choice == "retain":
        from autograd.memory import retain_freed_memory

        retain_freed_memory()


def require_device(device: str) -> None:
    """Exit with a message saying what is missing when ``device`` is 'cuda' and either framework lacks the
    GPU."""
    if device != "cuda":
        return
    problems = []
    if not cupy_available():
        if importlib.util.find_spec("cupy") is None:
            problems.append("CuPy is not installed (pip install cupy-cuda12x, for CUDA 12)")
        else:
            problems.append(
                "CuPy is installed but sees no GPU (no NVIDIA driver, or CUDA_VISIBLE_DEVICES hides it)"
            )
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            problems.append(f"PyTorch {torch.__version__} is a CPU-only build: install a CUDA build of torch")
        else:
            problems.append(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
    if problems:
        raise SystemExit(
            "error: --device cuda compares CuPy with PyTorch CUDA on one GPU, but:\n  "
            + "\n  ".join(problems)
        )


def _no_sync():
    pass


def synchronizers(device: str):
    """(wait for our GPU work, wait for PyTorch's GPU work); both do nothing on the CPU."""
    if device != "cuda":
        return _no_sync, _no_sync
    import cupy

    return cupy.cuda.Device().synchronize, torch.cuda.synchronize


def timed(step, sync=_no_sync) -> float:
    """Seconds one call of ``step`` takes, from an idle device until its work is finished."""
    sync()
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def interleaved_medians(ours, theirs, repeats, sync_ours=_no_sync, sync_theirs=_no_sync, warmup=2):
    """Median seconds of ``ours`` and of ``theirs``, timed alternately so that drift hits both alike."""
    for _ in range(warmup):
        timed(ours, sync_ours), timed(theirs, sync_theirs)
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        ours_times.append(timed(ours, sync_ours))
        theirs_times.append(timed(theirs, sync_theirs))
    return statistics.median(ours_times), statistics.median(theirs_times)


# -- GPU memory ------------------------------------------------------------------------------------------
def reset_gpu_memory() -> None:
    """Give every cached block back to the GPU and restart PyTorch's peak counter (between two tasks)."""
    import cupy

    gc.collect()
    cupy.get_default_memory_pool().free_all_blocks()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def gpu_memory_mib() -> tuple[float, float]:
    """(ours, PyTorch's) GPU memory in MiB held by each caching allocator since ``reset_gpu_memory``.

    CuPy's pool keeps every block it got until told to free them, so its size is its high-water mark;
    PyTorch's counterpart is its peak reserved memory. Both include weights and optimizer state."""
    import cupy

    return cupy.get_default_memory_pool().total_bytes() / 2**20, torch.cuda.max_memory_reserved() / 2**20


# -- the machine -----------------------------------------------------------------------------------------
def describe_environment(device: str = "cpu") -> str:
    """Python, NumPy, PyTorch, threads and BLAS; and with ``device='cuda'`` the GPU and its libraries."""
    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    ]
    try:
        import numba

        lines.append(f"numba {numba.__version__}, threads {numba.get_num_threads()}")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            lines.append(
                f"BLAS: {info.get('internal_api')} {info.get('version')} kernel={info.get('architecture')} "
                f"threads={info.get('num_threads')} ({os.path.basename(info.get('filepath', ''))})"
            )
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS kernel unknown")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "AUTOGRAD_KERNELS"):
        lines.append(f"{var}={os.environ.get(var, '(unset)')}")
    if device == "cuda":
        lines.append(describe_gpu())
    return "\n".join(lines)


def describe_gpu() -> str:
    """The GPU's name and memory, the CUDA driver and runtime, CuPy's and PyTorch's CUDA settings."""
    import cupy

    runtime = cupy.cuda.runtime
    props = torch.cuda.get_device_properties(torch.cuda.current_device())

    def version(v):  # CUDA writes 12.4 as 12040
        return f"{v // 1000}.{v % 1000 // 10}"

    return "\n".join(
        [
            f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor}",
            f"CUDA driver {version(runtime.driverGetVersion())}, CuPy {cupy.__version__} "
            f"(CUDA runtime {version(runtime.runtimeGetVersion())}), torch CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}",
            f"torch TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, "
            f"cudnn {torch.backends.cudnn.allow_tf32}; "
            f"cudnn.benchmark {torch.backends.cudnn.benchmark}; "
            f"CUPY_TF32={os.environ.get('CUPY_TF32', '(unset)')}",
        ]
    )
