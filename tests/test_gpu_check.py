"""scripts/gpu_check.sh and the GPU benchmarks, from the CPU: valid bash, and a quick, clear refusal
without a GPU (no suite, no output folder)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autograd import cupy_available

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def test_gpu_check_is_an_executable_strict_bash_script():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert "pip install cupy-cuda12x" in text


@pytest.mark.skipif(cupy_available(), reason="CuPy sees a GPU here: the check would run")
def test_gpu_check_refuses_at_once_without_a_gpu(tmp_path):
    out = tmp_path / "check"
    result = subprocess.run(
        [str(SCRIPT), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert result.returncode != 0
    assert "needs CuPy and an NVIDIA GPU" in result.stderr and "Nothing was run" in result.stderr
    assert "pip install cupy-cuda12x" in result.stderr
    assert "=== tests" not in result.stdout and not out.exists()


@pytest.mark.skipif(
    cupy_available() and torch.cuda.is_available(), reason="a GPU for both frameworks is here"
)
@pytest.mark.parametrize("bench", ["model.py", "ops.py"])
def test_gpu_benchmarks_say_what_is_missing(bench):
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / bench), "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "--device cuda compares CuPy with PyTorch CUDA on one GPU, but:" in result.stderr
    problems = result.stderr.split("but:", 1)[1]  # one line per missing piece
    assert ("CuPy is" in problems) == (not cupy_available())
    assert ("PyTorch" in problems) == (not torch.cuda.is_available())
