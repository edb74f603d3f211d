"""The CPU benchmarks still run (benchmarks are not tests: nothing here looks at a time). Each is started on
its smallest case, with both allocator settings, and must print its table with a ratio."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]


def _run(*args):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("malloc", ["retain", "default"])
def test_ops_benchmark_prints_a_ratio(malloc):
    out = _run(
        REPO / "bench" / "ops.py", "--quick", "--only", "gelu", "--configs", "tiny-b8-s4", "--malloc", malloc
    )
    assert f"malloc {malloc}" in out
    assert re.search(r"tiny-b8-s4\s+gelu\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+", out), out


def test_benchmarks_reject_an_unknown_allocator_setting():
    for bench in ("ops.py", "model.py", "data_parallel.py"):
        result = subprocess.run(
            [sys.executable, str(REPO / "bench" / bench), "--malloc", "jemalloc"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2 and "--malloc" in result.stderr and "retain" in result.stderr


def test_optimizer_benchmark_times_both_of_our_paths():
    out = _run(REPO / "bench" / "optimizer.py", "--model", "convnext_cifar_atto", "--threads", "1")
    assert re.search(r"parameters laid flat\)\s+[\d.]+ ms", out), out
    assert re.search(r"foreach=True\s+[\d.]+ ms\s+ours / PyTorch [\d.]+ per parameter, [\d.]+ flat", out), out


def test_model_benchmark_runs_the_imagenette_convnext_against_its_pytorch_twin():
    """The twins are built with identical weights (BatchNorm buffers too), or load_state_dict raises."""
    out = _run(
        REPO / "bench" / "model.py", "--quick", "--tasks", "imagenette-train", "--imagenette-batch-size", "2"
    )
    assert re.search(r"BN deep-stem ConvNeXt train, batch 2, 128px\s+\d+ms\s+\d+ms\s+[\d.]+", out), out


def test_reference_step_prints_images_per_second():
    out = _run(REPO / "bench" / "reference_step.py", "--steps", 1, "--repeats", 1, "--batch-size", 8)
    assert re.search(r"convnext_cifar_3stage .*batch 8: \d+ images/s", out), out
