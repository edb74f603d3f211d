"""Shared test setup: hypothesis profiles and paths.

Profiles: ``ci`` (chosen when the CI environment variable is set) runs with no deadline and prints the
reproduction blob of any failure; ``dev`` is the same with fewer examples for a quick local loop.
Pick one explicitly with ``HYPOTHESIS_PROFILE=ci``.

The ``device`` fixture runs a test once on the CPU and once on an NVIDIA GPU through CuPy; the GPU run
is skipped where CuPy or a GPU is missing.
"""

import os
import sys
from pathlib import Path

# Several test processes (pytest-xdist's -n auto: one per core) give each process one thread for BLAS,
# OpenMP and torch, as each data-parallel training process has (tinyconvnext/parallel.py). With two threads
# apiece, four threads would share two cores, and the BLAS and OpenMP threads spin-wait for each other: a
# lesson's training then runs many times slower. Set before NumPy and torch load their thread pools;
# subprocesses (the lessons) inherit it.
SEVERAL_PROCESSES = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1
if SEVERAL_PROCESSES:
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numba  # noqa: E402  (after the thread settings: this imports NumPy)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import autograd  # noqa: E402

if SEVERAL_PROCESSES:
    threadpool_limits(1)  # in case a plugin loaded NumPy's BLAS before the setting above
    # Numba read its thread count on import: this process keeps the right to start the machine's threads
    # (the thread-count tests compare 1 thread with numba.config.NUMBA_NUM_THREADS) but uses one.
    # (NUMBA_NUM_THREADS stays unset: Numba rereads it and refuses a change once its threads run.)
    numba.set_num_threads(1)

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))  # so test files can import the shared helper modules here

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    print_blob=True,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=10,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# Session scope: hypothesis refuses function-scoped fixtures in @given tests (they would not be reset
# between examples); a device name needs no resetting.
@pytest.fixture(scope="session", params=["cpu", "cuda"])
def device(request):
    """The device a test runs its ops on: "cpu", then "cuda" (skipped without CuPy and a GPU)."""
    if request.param == "cuda" and not autograd.cupy_available():
        pytest.skip("needs CuPy and an NVIDIA GPU (autograd.cupy_available() is False)")
    return request.param


def pytest_configure(config):
    """Fix one hypothesis seed per run and print it, so any failure reproduces with
    ``--hypothesis-seed=N`` (or ``HYPOTHESIS_SEED=N``)."""
    import random

    from hypothesis import core

    seed = config.getoption("hypothesis_seed", default=None) or os.environ.get("HYPOTHESIS_SEED")
    seed = int(seed) if seed is not None else random.randrange(2**32)
    os.environ["HYPOTHESIS_SEED"] = str(seed)  # pytest-xdist's workers, started after this, use the same seed
    core.global_force_seed = seed
    config._tinyconvnext_hypothesis_seed = seed


def pytest_report_header(config):
    seed = getattr(config, "_tinyconvnext_hypothesis_seed", None)
    return f"hypothesis seed: {seed} (reproduce with --hypothesis-seed={seed})"


def shared_data_dir():
    """The real data sets: $TINYCONVNEXT_DATA, else ../shared/data beside the repository; None if absent."""
    import pathlib

    candidates = [os.environ.get("TINYCONVNEXT_DATA"), TESTS_DIR.parent.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and pathlib.Path(candidate).is_dir():
            return pathlib.Path(candidate)
    return None
