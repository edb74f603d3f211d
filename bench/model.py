"""Whole-model speed and memory, ours against PyTorch eager on the same CPU, in one run.

    python bench/model.py                     # ConvNeXt-T inference (batch 8, 224x224) and a CIFAR training step
    python bench/model.py --quick
    python bench/model.py --cifar-model convnext_cifar_pico --batch-size 128

* inference: ConvNeXt-T, batch 8, 224x224, eval mode, no graph.
* training step: forward, cross-entropy, backward and an AdamW step of a CIFAR ConvNeXt at batch 128.
Times are medians of interleaved repeats (ours, then PyTorch, alternately), and, in the "alone" columns,
medians measured in a child process per framework (each thread pool spin-waits after its own parallel
work, so in one process the two slow each other down). Peak memory is measured in a
child process per framework: the rise of the resident set size (VmHWM, after resetting it) over one step,
with glibc told to return large blocks at once (MALLOC_MMAP_THRESHOLD_) so that freed memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import autograd as ag  # noqa: E402
import tinyconvnext  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from ops import describe_environment  # noqa: E402
from torch_convnext import TorchConvNeXt  # noqa: E402


def build(task, cifar_model, batch_size):
    """(our step, torch step) closures for a task, on twin models with identical weights."""
    if task == "inference":
        name, num_classes, shape = "convnext_tiny", 1000, (8, 3, 224, 224)
    else:
        name, num_classes, shape = cifar_model, 10, (batch_size, 3, 32, 32)
    config = tinyconvnext.VARIANTS[name]
    ours = tinyconvnext.create_model(name, num_classes=num_classes)
    theirs = TorchConvNeXt(num_classes=num_classes, depths=config["depths"], dims=config["dims"],
                           patch_size=config.get("patch_size", 4))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, num_classes, size=shape[0])
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    if task == "inference":
        ours.eval(), theirs.eval()

        def our_step():
            with ag.no_grad():
                ours(x)

        def torch_step():
            with torch.no_grad():
                theirs(x_t)

        return our_step, torch_step
    our_opt = optim.AdamW(optim.weight_decay_groups(ours.named_parameters(), 0.05), lr=1e-3)
    torch_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3, weight_decay=0.05)

    def our_step():
        our_opt.zero_grad()
        F.cross_entropy(ours(x), y).backward()
        our_opt.step()

    def torch_step():
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(x_t), y_t).backward()
        torch_opt.step()

    return our_step, torch_step


def time_pair(our_step, torch_step, repeats):
    our_step(), torch_step(), our_step(), torch_step()  # warm up: JIT, allocator, optimizer state
    ours, theirs = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        our_step()
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch_step()
        theirs.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(theirs)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def alone_time_worker(task, framework, cifar_model, batch_size, repeats):
    """In a child process: the median time of one framework's step with no other thread pool around."""
    our_step, torch_step = build(task, cifar_model, batch_size)
    step = our_step if framework == "ours" else torch_step
    step(), step()
    print(json.dumps({"seconds": statistics.median(_timed(step) for _ in range(repeats))}))


def _timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def peak_memory_worker(task, framework, cifar_model, batch_size):
    """In a child process: MiB the resident set rises by during one step (after a warm-up step)."""
    our_step, torch_step = build(task, cifar_model, batch_size)
    step = our_step if framework == "ours" else torch_step
    step()
    base = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    step()
    print(json.dumps({"peak_mib": (_rss_kib("VmHWM") - base) / 1024}))


def child(mode, task, framework, cifar_model, batch_size, repeats=0, env=None):
    out = subprocess.run([sys.executable, __file__, mode, task, framework, "--cifar-model", cifar_model,
                          "--batch-size", str(batch_size), "--repeats", str(repeats)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_memory(task, framework, cifar_model, batch_size):
    # A fixed mmap threshold makes glibc return every large block when it is freed, so both frameworks'
    # high-water marks measure live memory, not blocks that the allocator kept from the warm-up step.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    return child("--memory-worker", task, framework, cifar_model, batch_size, env=env)["peak_mib"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cifar-model", default="convnext_cifar_atto")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--tasks", default="inference,train")
    parser.add_argument("--repeats", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, metavar=("TASK", "FRAMEWORK"), help=argparse.SUPPRESS)
    parser.add_argument("--time-worker", nargs=2, metavar=("TASK", "FRAMEWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        return peak_memory_worker(*args.memory_worker, args.cifar_model, args.batch_size)
    if args.time_worker:
        return alone_time_worker(*args.time_worker, args.cifar_model, args.batch_size, args.repeats)
    repeats = 3 if args.quick else 10
    print(describe_environment())
    print(f"\n{'task':40s} {'ours':>9s} {'torch':>9s} {'ratio':>6s}   {'alone: ours':>11s} {'torch':>7s} {'ratio':>6s}"
          f"   {'ours MiB':>9s} {'torch MiB':>9s} {'ratio':>6s}")
    for task in args.tasks.split(","):
        label = ("ConvNeXt-T inference, batch 8, 224x224" if task == "inference"
                 else f"{args.cifar_model} train step, batch {args.batch_size}")
        ours, theirs = time_pair(*build(task, args.cifar_model, args.batch_size), repeats)
        alone_ours = child("--time-worker", task, "ours", args.cifar_model, args.batch_size, repeats)["seconds"]
        alone_torch = child("--time-worker", task, "torch", args.cifar_model, args.batch_size, repeats)["seconds"]
        mem_ours = peak_memory(task, "ours", args.cifar_model, args.batch_size)
        mem_torch = peak_memory(task, "torch", args.cifar_model, args.batch_size)
        print(f"{label:40s} {ours * 1e3:7.0f}ms {theirs * 1e3:7.0f}ms {ours / theirs:6.2f}   "
              f"{alone_ours * 1e3:9.0f}ms {alone_torch * 1e3:5.0f}ms {alone_ours / alone_torch:6.2f}   "
              f"{mem_ours:9.0f} {mem_torch:9.0f} {mem_ours / max(mem_torch, 1e-9):6.2f}", flush=True)


if __name__ == "__main__":
    main()
