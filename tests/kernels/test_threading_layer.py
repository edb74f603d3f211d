"""The Numba threading layer: OpenMP for one thread (cheap to enter), workqueue for several (no spinning)."""

import os
import subprocess
import sys

import pytest

from autograd.kernels.cpu import _openmp_available

PROBE = (
    "import numpy as np, numba, autograd as ag; from autograd.nn import functional as F; "
    "F.gelu(ag.tensor(np.zeros(8, np.float32))); print(numba.threading_layer())"
)


def _layer(threads, **extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env.update(NUMBA_NUM_THREADS=str(threads), **extra)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_several_threads_take_workqueue():
    assert _layer(2) == "workqueue"


@pytest.mark.skipif(not _openmp_available(), reason="Numba finds no OpenMP runtime here")
def test_one_thread_takes_openmp():
    assert _layer(1) == "omp"


def test_the_environment_decides_when_it_names_a_layer():
    assert _layer(1, NUMBA_THREADING_LAYER="workqueue") == "workqueue"
