"""Lesson 13: the GPU, and all the CPU's cores. The same engine on an NVIDIA GPU, and where the time goes.

Every op in the engine takes its array module from its inputs: NumPy arrays give NumPy calls (and our
Numba kernels), CuPy arrays give CuPy calls (and CUDA kernels). So moving a model to the GPU is
`model.to("cuda")` plus putting each batch there, exactly as in PyTorch, and training on the GPU is
`python train_cifar.py --backend cupy`.

This lesson first profiles one training step on the CPU with `autograd.profiler` (which op costs
what, forward and backward), then, when CuPy sees a GPU, runs the same step there, profiles it again
and compares a short training run on both. In between it reads one of the CUDA kernels and runs it, and
a whole step on the GPU's code path, in the CPU emulator; and it splits one training step over two worker
processes (`tinyconvnext.parallel.DataParallel`, what `train_cifar.py --processes` runs), checks that the
gradients are the same and measures the speed with one process and with two. Without a GPU it says so and
skips the GPU's training run (exit status 0): nothing here needs a GPU to be read.

    python lessons/13_the_gpu.py --quick    # batch 32, a few steps (what CI runs)
    python lessons/13_the_gpu.py            # batch 128, more repeats; with a GPU also a short training run

Figure (in --out, default lessons/output/13/):
    step_profile.png   milliseconds per op in one training step (forward + backward), CPU (and GPU)
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import find_cifar10, lesson_setup, plt, save_figure, section

args = lesson_setup("13", "the GPU, and all the CPU's cores")  # before the engine: a bad option exits at once

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.kernels import emulate_cuda  # noqa: E402
from autograd.kernels.cuda import gelu as cuda_gelu  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext import create_model  # noqa: E402

lesson_start = time.perf_counter()


# --------------------------------------------------------------------------------------------------
section("1. Is there a GPU?")
# --------------------------------------------------------------------------------------------------
# autograd.cupy_available() is True when CuPy imports and sees at least one device. CuPy is not a
# requirement of the project (pip install cupy-cuda12x where there is an NVIDIA GPU and CUDA 12).
gpu = ag.cupy_available()
if gpu:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(
        f"yes: {props['name'].decode()}, {props['totalGlobalMem'] / 2**30:.0f} GiB, CuPy {cupy.__version__}"
    )
else:
    try:
        import cupy  # noqa: F401

        print("CuPy is installed but sees no GPU: the GPU half of this lesson will be skipped.")
    except ImportError:
        print(
            "CuPy is not installed (no NVIDIA GPU here, or not set up): "
            "the GPU half of this lesson will be skipped."
        )

# --------------------------------------------------------------------------------------------------
section("2. One training step on the CPU, op by op")
# --------------------------------------------------------------------------------------------------
# The step is the training loop's: forward, cross-entropy, backward, AdamW. The profiler wraps every
# op's forward and backward with a timer; what it does not see (the graph walk, the optimizer's array
# arithmetic, Python) is the gap between its total and the block's wall time.
# A training step frees and allocates the same large arrays every time. By default glibc gives large freed
# blocks back to the OS, and every new array then costs page faults on fresh zeroed pages (in one profile
# GELU's backward took 4x its arithmetic's time). The training program keeps freed memory for reuse, and so
# does this lesson, so that the profile shows the ops' own time (autograd/memory.py, docs/benchmarks.md).
ag.memory.retain_freed_memory()
batch = 32 if args.quick else 128
repeats = 2 if args.quick else 5
model_name = "convnext_cifar_atto"
rng = np.random.default_rng(0)
images = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, size=batch)


def profiled_step(device):
    ag.manual_seed(0)
    model = create_model(model_name, num_classes=10).to(device)
    optimizer = optim.AdamW(optim.weight_decay_groups(model.named_parameters(), 0.05), lr=1e-3)
    x, y = ag.tensor(images, device=device), ag.tensor(labels, device=device)

    def step():
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    step()  # the first call compiles kernels (Numba on the CPU, NVRTC on the GPU) and warms caches
    best = None
    for _ in range(repeats):
        with ag.profiler.profile() as prof:
            step()
        if best is None or prof.total_seconds < best.total_seconds:
            best = prof
    return best


cpu_profile = profiled_step("cpu")
print(
    f"{model_name}, batch {batch}, best of {repeats}: "
    f"{1e3 * cpu_profile.total_seconds:.0f} ms per step on the CPU "
    f"({batch / cpu_profile.total_seconds:.0f} images/s)"
)
print(cpu_profile.table(12))
# On two CPU cores the pointwise convs (Linear: (N*H*W, d) @ (d, 4d) matrix products, forward and the
# two products of backward) take most of the step; the depthwise 7x7 conv, which dominates the count
# of *memory* passes, is cheap in time thanks to the fused kernel of lesson 6.

profiles = {"CPU": cpu_profile}
if gpu:
    # --------------------------------------------------------------------------------------------------
    section("3. The same step on the GPU")
    # --------------------------------------------------------------------------------------------------
    # The profiler synchronises the device around each op, so each op's time is its own kernels' time.
    # A GPU runs the matrix products tens of times faster; small element-wise ops then cost mostly their
    # launch (a few microseconds each), which is why fused kernels matter even more there.
    gpu_profile = profiled_step("cuda")
    profiles["GPU"] = gpu_profile
    print(
        f"{1e3 * gpu_profile.total_seconds:.1f} ms per step on the GPU "
        f"({batch / gpu_profile.total_seconds:.0f} "
        f"images/s): {cpu_profile.total_seconds / gpu_profile.total_seconds:.0f}x the CPU"
    )
    print(gpu_profile.table(12))

# The figure: milliseconds per op (forward + backward), the ops that cost most on the CPU.
# The last bar is what the profiler saw no op do: AdamW's arithmetic on raw arrays, the graph walk, Python.
OUTSIDE = "(outside the ops)"
ops = list(cpu_profile.by_op())[:10] + [OUTSIDE]
fig, ax = plt.subplots(figsize=(9, 5))
height = 0.8 / len(profiles)
for k, (name, prof) in enumerate(profiles.items()):
    totals = prof.by_op()
    totals[OUTSIDE] = max(0.0, prof.total_seconds - sum(totals.values()))
    ax.barh(
        np.arange(len(ops)) + k * height,
        [1e3 * totals.get(op, 0.0) for op in ops],
        height=height,
        label=f"{name}: {1e3 * prof.total_seconds:.1f} ms per step",
    )
ax.set_yticks(np.arange(len(ops)) + height * (len(profiles) - 1) / 2)
ax.set_yticklabels(ops)
ax.invert_yaxis()
ax.set_xscale("log" if len(profiles) > 1 else "linear")
ax.set_xlabel("milliseconds in one training step (forward + backward)")
ax.set_title(f"Where a training step's time goes: {model_name}, batch {batch}")
ax.legend()
save_figure(fig, "step_profile.png", dpi=100)

# --------------------------------------------------------------------------------------------------
section("4. A CUDA kernel, read and run without a GPU")
# --------------------------------------------------------------------------------------------------
# On the GPU the hot ops (depthwise conv, LayerNorm, GELU, cross-entropy, AdamW) run kernels written in
# CUDA C, in autograd/kernels/cuda/, beside the Numba kernels of the CPU. A kernel is one function that
# every thread of a grid runs; a thread finds its element from blockIdx, blockDim and threadIdx, and the
# "grid-stride" loop lets a grid of any size cover any number of elements. GELU's forward, as CuPy
# compiles it for float32 (scalar_t is float; the same text with double serves float64):
source = cuda_gelu.SOURCE.code_for(np.float32)
start = source.index('extern "C" __global__ void gelu_forward')
print(source[: source.index("\n}\n", start) + 3])
# Our kernels never make one thread wait for another (no shared memory, no __syncthreads, no atomics;
# sums across threads go through a buffer of partial sums). Then running the threads one after another
# gives the same result as running them all at once, and that is what the CPU emulator does: it compiles
# the same CUDA source with the C++ compiler and loops over blocks and threads. It is slow, but it lets
# anyone check, and step through, the GPU's code on a laptop. A CUDA kernel called on NumPy arrays runs
# there:
x = rng.standard_normal(100_000).astype(np.float32)
tic = time.perf_counter()
y_cuda_code = cuda_gelu.gelu_forward(x)
emulated_ms = 1e3 * (time.perf_counter() - tic)
y_numba = F.gelu(ag.tensor(x)).numpy()
print(
    f"GELU of {x.size:,} values by the CUDA kernel in the emulator "
    f"({-(-x.size // 256)} blocks of 256 threads, "
    f"{emulated_ms:.0f} ms, with a compile when the cache was cold): "
    "largest difference from the Numba kernel "
    f"{np.abs(y_cuda_code - y_numba).max():.1e}"
)
# autograd.kernels.emulate_cuda() sends every op's NumPy arrays to its CUDA kernels, so a training step
# takes the GPU's code path here. Its loss equals the CPU path's to float32 rounding:
ag.manual_seed(0)
model = create_model(model_name, num_classes=10)
x4, y4 = ag.tensor(images[:4]), ag.tensor(labels[:4])
with ag.no_grad():
    loss_cpu_path = float(F.cross_entropy(model(x4), y4).item())
    with emulate_cuda():
        loss_cuda_path = float(F.cross_entropy(model(x4), y4).item())
print(f"loss of 4 images: CPU kernels {loss_cpu_path:.6f}, CUDA kernels (emulated) {loss_cuda_path:.6f}")

# --------------------------------------------------------------------------------------------------
section("5. All the CPU's cores: one step split over processes")
# --------------------------------------------------------------------------------------------------
# One Python process keeps both cores busy only inside the big matrix products (BLAS threads); the
# element-wise NumPy arithmetic, the graph walk and Python run on one core. DataParallel starts one
# single-threaded worker process per core and shares the weights with them through shared memory. Each
# step it cuts the batch into slices; worker r runs forward and backward of its slice's mean loss and
# writes (n_r / B) * its gradient to its own shared buffer; the main process sums the buffers into the
# parameters' .grad and runs the optimizer on the shared weights, which the workers read at the next step.
# The sum is the gradient of the whole batch's mean loss: the same numbers as one process, up to the
# order of the float additions. (The ConvNeXt here has no BatchNorm, whose statistics would depend on the
# slice.)
# DataParallel starts its workers with "spawn": each is a fresh interpreter that first re-runs the main
# script, so a script that starts workers keeps its own work under `if __name__ == "__main__":`. A lesson
# is a script without that guard, so the step lives in a short script of its own, data_parallel_step.py
# beside this lesson. Here it is, then its output:
STEP_SCRIPT = Path(__file__).resolve().parent / "data_parallel_step.py"
source = STEP_SCRIPT.read_text(encoding="utf-8")
print(source[source.index("def main") :])
result = subprocess.run(
    [sys.executable, str(STEP_SCRIPT), "--batch", str(batch), "--steps", "2" if args.quick else "10"],
    capture_output=True,
    text=True,
)
print(result.stdout.rstrip())
if result.returncode != 0:
    raise SystemExit(f"{STEP_SCRIPT.name} failed:\n{result.stderr[-2000:]}")
# The cores are shared with whatever else runs: read the ratio, not the numbers. On a busy machine two
# processes can gain nothing; docs/benchmarks.md measures it on an idle one (bench/data_parallel.py).

if not gpu:
    print("\nNo GPU here, so the lesson skips the GPU's training run. With an NVIDIA GPU and CuPy:")
    print("    python lessons/13_the_gpu.py")
    print("    python train_cifar.py --backend cupy")


def short_run_on_each_backend():
    """Train one short epoch with each backend on CIFAR-10 (when it is found) and print the speed."""
    from tinyconvnext.train import ImageDataset, TrainConfig, train

    # The training program is the same for both backends: --backend picks where the model, the batches
    # and the optimizer state live. The data pipeline (decoding, cropping, flipping) stays on the CPU in a
    # background thread; on the GPU it can become the bottleneck, which images/s below shows.
    cifar, data_dir = find_cifar10("skips the training comparison")
    if cifar is None:
        return
    dataset = ImageDataset(
        cifar.train_images, cifar.train_labels, cifar.test_images, cifar.test_labels, list(cifar.classes)
    )
    for backend in ("numpy", "cupy"):
        run = args.out / f"run_{backend}"
        if run.exists():
            shutil.rmtree(run)
        config = TrainConfig(
            dataset="cifar10",
            model=model_name,
            epochs=1,
            batch_size=128,
            subset=2048 if args.quick else 10000,
            eval_subset=1000,
            backend=backend,
            out=str(run),
            progress=False,
            seed=0,
        )
        record = train(config, dataset=dataset)
        print(
            f"{backend:>6s}: {record['images_per_second']:.0f} images/s, "
            f"test accuracy {record['test_acc']:.1%}"
        )


if gpu:
    section("6. A short training run on each")
    short_run_on_each_backend()
print(f"the whole lesson took {time.perf_counter() - lesson_start:.0f} s")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. Profile (section 2) with batch 8 instead of 32. Predict whether the share of "(outside the ops)" grows
#    or shrinks, and why: Python's cost per step does not depend on the batch.
# 2. In data_parallel_step.py, give DataParallel 1 process instead of 2. Predict its images/s against the
#    one-process step in this process (one thread against the default threads).
# 3. Run `python lessons/data_parallel_step.py --batch 33`: 33 images over 2 processes. Predict the slice
#    sizes and whether the gradients still agree with one process's (the weights n_r / B make them agree).
