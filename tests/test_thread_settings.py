"""Several test processes on a small machine run one thread each (tests/conftest.py): BLAS, OpenMP, torch and
Numba. A regression here (say, NumPy imported before the settings) slows the suite severalfold."""

import os

import numba
import pytest
from threadpoolctl import threadpool_info

SEVERAL_PROCESSES = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1


@pytest.mark.skipif(not SEVERAL_PROCESSES, reason="one test process: it may use every core")
def test_each_test_process_runs_one_thread():
    assert numba.get_num_threads() == 1
    # BLAS only: Numba's OpenMP library is loaded (to see whether it exists) but runs nothing in a process
    # that may start several threads; Numba's workqueue layer runs the kernels on the one thread above.
    blas = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    assert blas and all(threads == 1 for threads in blas.values()), blas
    torch = pytest.importorskip("torch")
    assert torch.get_num_threads() == 1


@pytest.mark.skipif(not SEVERAL_PROCESSES, reason="one test process: it may use every core")
def test_subprocesses_inherit_one_thread_for_blas_and_openmp():
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["OMP_NUM_THREADS"] == "1"
