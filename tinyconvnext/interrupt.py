"""Ctrl-C that waits for a block of bookkeeping to finish.

Python turns Ctrl-C (SIGINT) into a ``KeyboardInterrupt`` at whatever line runs at that moment. In the middle
of writing an epoch's record, redrawing the curves or saving a checkpoint, that leaves a half-written epoch
behind; worse, in the middle of a first ``import`` of a compiled extension (matplotlib's, for the curves) the
interpreter itself can abort. ``ctrl_c_deferred`` holds the signal until its block ends and then delivers it
as if it had just arrived, the way PyTorch Lightning and Keras finish their checkpoint before they stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def ctrl_c_deferred():
    """Run the block whole: a SIGINT that arrives inside it is re-raised when it ends, to the handler that was
    there before (``KeyboardInterrupt`` by default; nothing where Ctrl-C is ignored). Outside the main thread,
    where Python cannot install signal handlers, the block runs unprotected."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # delivered now, to the handler that was there before
