"""Where the time goes: per-op forward and backward times, for any code that runs our ops.

    with autograd.profiler.profile() as prof:
        loss = model(x).sum(); loss.backward()
    print(prof.table())

Inside the block every ``Function`` subclass in ``Function.registry`` has its ``forward`` and ``backward``
wrapped by a timer (the wrapping is undone on exit). On a GPU, kernels run asynchronously, so each timed
call waits for the device before and after (``synchronize``): the profile is honest but slower than a
plain run. Time spent outside the ops (the graph walk, Python glue, optimizer arithmetic on raw arrays)
is not attributed to any op; ``Profile.total_seconds`` holds the whole block's wall time for comparison.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

from .backend import cupy_available
from .function import Function


class Profile:
    """Calls and seconds per (op name, "forward" | "backward")."""

    def __init__(self):
        self.calls = defaultdict(int)
        self.seconds = defaultdict(float)
        self.total_seconds = 0.0

    def rows(self) -> list[dict]:
        """One dict per (op, phase), the slowest first."""
        rows = [
            dict(op=op, phase=phase, calls=self.calls[op, phase], seconds=self.seconds[op, phase])
            for op, phase in self.seconds
        ]
        return sorted(rows, key=lambda row: -row["seconds"])

    def by_op(self) -> dict[str, float]:
        """Forward + backward seconds per op."""
        totals = defaultdict(float)
        for (op, _), seconds in self.seconds.items():
            totals[op] += seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def table(self, limit: int = 20) -> str:
        attributed = sum(self.seconds.values())
        lines = [f"{'op':<28s} {'phase':<9s} {'calls':>6s} {'ms':>9s} {'share':>6s}"]
        for row in self.rows()[:limit]:
            share = row["seconds"] / attributed if attributed else 0.0
            lines.append(
                f"{row['op']:<28s} {row['phase']:<9s} {row['calls']:6d} {1e3 * row['seconds']:9.2f} "
                f"{share:6.1%}"
            )
        lines.append(f"ops: {1e3 * attributed:.1f} ms of the block's {1e3 * self.total_seconds:.1f} ms")
        return "\n".join(lines)


def _synchronize():
    if cupy_available():
        import cupy

        cupy.cuda.Device().synchronize()


def _timed(method, phase, profile, sync):
    def wrapper(self, *args, **kwargs):
        if sync:
            _synchronize()
        start = time.perf_counter()
        result = method(self, *args, **kwargs)
        if sync:
            _synchronize()
        name = type(self).__name__
        profile.calls[name, phase] += 1
        profile.seconds[name, phase] += time.perf_counter() - start
        return result

    wrapper.__wrapped__ = method
    return wrapper


@contextmanager
def profile(synchronize: bool | None = None):
    """Time every op's forward and backward inside the block. ``synchronize`` (default: when CuPy sees a
    GPU) waits for the device around each call so that GPU time lands on the op that queued it."""
    sync = cupy_available() if synchronize is None else synchronize
    result = Profile()
    patched = []
    # Wrap each method where it is defined (an op may inherit its forward from a shared base class), once.
    owners = {
        base
        for cls in Function.registry.values()
        for base in cls.__mro__
        if issubclass(base, Function) and base is not Function
    }
    # The fast path of an op counts as its forward and backward too.
    phases = {
        "forward": "forward",
        "backward": "backward",
        "fast_forward": "forward",
        "fast_backward": "backward",
    }
    for cls in owners:
        for method, phase in phases.items():
            if method in cls.__dict__:
                original = cls.__dict__[method]
                setattr(cls, method, _timed(original, phase, result, sync))
                patched.append((cls, method, original))
    start = time.perf_counter()
    try:
        yield result
    finally:
        if sync:
            _synchronize()
        result.total_seconds = time.perf_counter() - start
        for cls, method, original in patched:
            setattr(cls, method, original)
