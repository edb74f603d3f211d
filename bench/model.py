"""Whole-model speed and memory, ours against PyTorch eager on the same CPU (or the same GPU), in one run.

    python bench/model.py                     # ConvNeXt-T inference (batch 8, 224x224) and a CIFAR
                                              # training step
    python bench/model.py --quick
    python bench/model.py --cifar-model convnext_cifar_pico --batch-size 128
    python bench/model.py --device cuda       # CuPy against PyTorch CUDA: the three tasks below, on one GPU

* inference: ConvNeXt-T, batch 8 (64 on the GPU), 224x224, eval mode, no graph.
* train: forward, cross-entropy, backward and an AdamW step of a CIFAR ConvNeXt at batch 128 (what
  train_cifar.py trains).
* tiny-train: the same step for ConvNeXt-T at 224x224, batch 8 (32 on the GPU); on the GPU by default.
* imagenette-train: the same step for the Imagenette ConvNeXt (``--stem-type deep --norm-layer batch``,
  ConvNeXt-pico's shape) at 128x128, batch 32 (one process's share of the batch of 64 in docs/results.md).
Times are medians of interleaved repeats (ours, then PyTorch, alternately), and, in the "alone" columns,
medians measured in a child process per framework (each thread pool spin-waits after its own parallel
work, so in one process the two slow each other down). Peak memory is measured in a
child process per framework: the rise of the resident set size (VmHWM, after resetting it) over one step,
with glibc told to return large blocks at once (MALLOC_MMAP_THRESHOLD_) so that freed memory is not counted.
On the GPU there are no "alone" columns (no thread pools compete): each step is timed from a synchronised
device until its work is done, and memory is what each framework's caching allocator held from the GPU
during the task (weights and optimizer state included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from devices import (  # noqa: E402
    WARMUP,
    add_device_argument,
    add_malloc_argument,
    apply_malloc,
    describe_environment,
    gpu_memory_mib,
    interleaved_medians,
    require_device,
    reset_gpu_memory,
    synchronizers,
    timed,
)
from torch_convnext import TorchConvNeXt  # noqa: E402

import autograd as ag  # noqa: E402
import tinyconvnext  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext.cli import make_parser, non_negative_int, positive_int, run_command  # noqa: E402

TASKS = ("inference", "train", "tiny-train", "imagenette-train")
# The Imagenette ConvNeXt of docs/results.md: ConvNeXt-pico's shape with resnet18d's deep stem and BatchNorm.
IMAGENETTE_MODEL = dict(depths=(2, 2, 6, 2), dims=(64, 128, 256, 512), stem_type="deep", norm_layer="batch")
DEFAULT_TASKS = {"cpu": "inference,train", "cuda": "inference,train,tiny-train"}


def batch_defaults(device):
    """Batch sizes per task when not given: a GPU needs larger batches to be busy."""
    if device == "cuda":
        return {"inference": 64, "tiny-train": 32}
    return {"inference": 8, "tiny-train": 8}


def task_spec(task, args):
    """(label, variant, number of classes, input shape, whether it trains) of a task."""
    if task == "inference":
        n = args.inference_batch_size
        return f"ConvNeXt-T inference, batch {n}, 224x224", "convnext_tiny", 1000, (n, 3, 224, 224), False
    if task == "tiny-train":
        n = args.tiny_batch_size
        return f"ConvNeXt-T train step, batch {n}, 224x224", "convnext_tiny", 1000, (n, 3, 224, 224), True
    if task == "train":
        n = args.batch_size
        return f"{args.cifar_model} train step, batch {n}", args.cifar_model, 10, (n, 3, 32, 32), True
    if task == "imagenette-train":
        n = args.imagenette_batch_size
        return f"BN deep-stem ConvNeXt train, batch {n}, 128px", "convnext_atto", 10, (n, 3, 128, 128), True
    raise ValueError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")


def build(task, args):
    """(our step, torch step) closures for a task, on twin models with identical weights, on
    ``args.device``."""
    _, name, num_classes, shape, training = task_spec(task, args)
    device = args.device
    options = dict(IMAGENETTE_MODEL, layer_scale_init_value=0.1) if task == "imagenette-train" else {}
    ours = tinyconvnext.create_model(name, num_classes=num_classes, **options).fuse()  # as training runs it
    theirs = TorchConvNeXt(
        num_classes=num_classes,
        depths=ours.depths,
        dims=ours.dims,
        patch_size=ours.patch_size,
        layer_scale=0.1 if options else 1e-6,
        stem_type=ours.stem_type,
        norm_layer=ours.norm_layer,
    )
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    ours.to(device), theirs.to(device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, num_classes, size=shape[0])
    x_ours, y_ours = ag.tensor(x, device=device), ag.tensor(y, device=device)
    x_t, y_t = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    if not training:
        ours.eval(), theirs.eval()

        def our_step():
            with ag.no_grad():
                ours(x_ours)

        def torch_step():
            with torch.no_grad():
                theirs(x_t)

        return our_step, torch_step
    our_opt = optim.AdamW(optim.weight_decay_groups(ours.named_parameters(), 0.05), lr=1e-3)
    torch_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3, weight_decay=0.05)

    def our_step():
        our_opt.zero_grad()
        F.cross_entropy(ours(x_ours), y_ours).backward()
        our_opt.step()

    def torch_step():
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(x_t), y_t).backward()
        torch_opt.step()

    return our_step, torch_step


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def alone_time_worker(task, framework, args):
    """In a child process: the median time of one framework's step with no other thread pool around."""
    our_step, torch_step = build(task, args)
    step = our_step if framework == "ours" else torch_step
    step(), step()
    print(json.dumps({"seconds": statistics.median(timed(step) for _ in range(args.repeats))}))


def peak_memory_worker(task, framework, args):
    """In a child process: MiB the resident set rises by during one step (after a warm-up step)."""
    our_step, torch_step = build(task, args)
    step = our_step if framework == "ours" else torch_step
    step()
    base = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    step()
    print(json.dumps({"peak_mib": (_rss_kib("VmHWM") - base) / 1024}))


def child(mode, task, framework, args, repeats=0, env=None):
    """Run a worker of this file in a fresh process (on the CPU) and return its JSON answer."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            mode,
            task,
            framework,
            "--cifar-model",
            args.cifar_model,
            "--batch-size",
            str(args.batch_size),
            "--inference-batch-size",
            str(args.inference_batch_size),
            "--tiny-batch-size",
            str(args.tiny_batch_size),
            "--imagenette-batch-size",
            str(args.imagenette_batch_size),
            "--repeats",
            str(repeats),
            "--malloc",
            args.malloc,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_memory(task, framework, args):
    # A fixed mmap threshold makes glibc return every large block when it is freed, so both frameworks'
    # high-water marks measure live memory, not blocks that the allocator kept from the warm-up step.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    return child("--memory-worker", task, framework, args, env=env)["peak_mib"]


def run_cpu(tasks, args, repeats):
    """Side by side, alone (a child process per framework) and peak resident memory, per task."""
    print(
        f"\n{'task':40s} {'ours':>9s} {'torch':>9s} {'ratio':>6s}"
        f"   {'alone: ours':>11s} {'torch':>7s} {'ratio':>6s}"
        f"   {'ours MiB':>9s} {'torch MiB':>9s} {'ratio':>6s}"
    )
    for task in tasks:
        label = task_spec(task, args)[0]
        ours, theirs = interleaved_medians(*build(task, args), repeats, warmup=WARMUP["cpu"])
        alone_ours = child("--time-worker", task, "ours", args, repeats)["seconds"]
        alone_torch = child("--time-worker", task, "torch", args, repeats)["seconds"]
        mem_ours = peak_memory(task, "ours", args)
        mem_torch = peak_memory(task, "torch", args)
        print(
            f"{label:40s} {ours * 1e3:7.0f}ms {theirs * 1e3:7.0f}ms {ours / theirs:6.2f}   "
            f"{alone_ours * 1e3:9.0f}ms {alone_torch * 1e3:5.0f}ms {alone_ours / alone_torch:6.2f}   "
            f"{mem_ours:9.0f} {mem_torch:9.0f} {mem_ours / max(mem_torch, 1e-9):6.2f}",
            flush=True,
        )


def run_gpu(tasks, args, repeats):
    """Side by side on one GPU, each step timed between device synchronisations; and GPU memory per task."""
    sync_ours, sync_torch = synchronizers("cuda")
    print(
        f"\n{'task':40s} {'ours':>10s} {'torch':>10s} {'ratio':>6s}"
        f"   {'ours MiB':>9s} {'torch MiB':>9s} {'ratio':>6s}"
    )
    for task in tasks:
        label = task_spec(task, args)[0]
        reset_gpu_memory()
        our_step, torch_step = build(task, args)
        ours, theirs = interleaved_medians(
            our_step, torch_step, repeats, sync_ours, sync_torch, warmup=WARMUP["cuda"]
        )
        mem_ours, mem_torch = gpu_memory_mib()
        del (
            our_step,
            torch_step,
        )  # the models and optimizer state go before the next task's memory is measured
        print(
            f"{label:40s} {ours * 1e3:8.1f}ms {theirs * 1e3:8.1f}ms {ours / theirs:6.2f}   "
            f"{mem_ours:9.0f} {mem_torch:9.0f} {mem_ours / max(mem_torch, 1e-9):6.2f}",
            flush=True,
        )


def main(argv=None):
    parser = make_parser("python bench/model.py", __doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (what the smoke test runs)")
    parser.add_argument("--cifar-model", default="convnext_cifar_atto", help="model of the CIFAR tasks")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="images per CIFAR training step")
    parser.add_argument(
        "--inference-batch-size",
        type=positive_int,
        default=None,
        help="images per ConvNeXt-T inference (None: 8 on the CPU, 64 on the GPU)",
    )
    parser.add_argument(
        "--imagenette-batch-size",
        type=positive_int,
        default=32,
        help="images per imagenette-train step",
    )
    parser.add_argument(
        "--tiny-batch-size",
        type=positive_int,
        default=None,
        help="images per ConvNeXt-T training step (None: 8 on the CPU, 32 on the GPU)",
    )
    parser.add_argument(
        "--tasks",
        default=None,
        help=f"comma-separated, of {', '.join(TASKS)} "
        f"(None: on cpu {DEFAULT_TASKS['cpu']}; on cuda {DEFAULT_TASKS['cuda']})",
    )
    add_device_argument(parser)
    add_malloc_argument(parser)
    parser.add_argument("--repeats", type=non_negative_int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, metavar=("TASK", "FRAMEWORK"), help=argparse.SUPPRESS)
    parser.add_argument("--time-worker", nargs=2, metavar=("TASK", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for key, value in batch_defaults(args.device).items():
        attribute = "inference_batch_size" if key == "inference" else "tiny_batch_size"
        if getattr(args, attribute) is None:
            setattr(args, attribute, value)
    if args.memory_worker:  # peak memory is measured with glibc's defaults, set by its parent (peak_memory)
        return peak_memory_worker(*args.memory_worker, args)
    apply_malloc(args.malloc)
    if args.time_worker:
        return alone_time_worker(*args.time_worker, args)
    tasks = (args.tasks or DEFAULT_TASKS[args.device]).split(",")
    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    require_device(args.device)
    repeats = 3 if args.quick else 10
    print(describe_environment(args.device) + f"; malloc {args.malloc}")
    (run_gpu if args.device == "cuda" else run_cpu)(tasks, args, repeats)


if __name__ == "__main__":
    sys.exit(run_command(main))
