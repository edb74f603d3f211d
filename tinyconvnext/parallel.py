"""Data-parallel training on the CPU's cores: N worker processes, one thread each, sharing one set of weights.

    python train_cifar.py --processes 2        # both cores of a 2-core machine

Why: one process with two threads keeps only the big matrix products (BLAS) on both cores; NumPy's
element-wise arithmetic, the graph walk and the Python glue run on one. Two single-threaded processes, each
on half the batch, keep both cores busy all the time (the speed-up is measured in ``docs/benchmarks.md``).

How, as PyTorch's ``DistributedDataParallel`` does on one machine, with shared memory instead of messages:
  - the parameters live in one shared-memory buffer that the main process and every worker see;
  - each step the batch is cut into N slices; worker r runs the training step of one process
    (``engine.forward_backward``) on its slice, the mean loss of the slice, and writes
    ``(n_r / B) * grad`` of it to its own shared gradient buffer. Their sum is the gradient of the whole
    batch's mean loss, the same quantity one process computes (up to the order of float additions);
  - the main process sums the N buffers into the parameters' ``.grad`` and runs the optimizer, in place on
    the shared weights; the workers read the new weights at the next step.
The workers only ever read the weights and the main process only writes them while the workers wait for
their next command, so no locks are needed. Buffers (BatchNorm's running statistics) follow rank 0, as
DistributedDataParallel's ``broadcast_buffers``: each worker normalises with its own slice's statistics,
rank 0's running averages are written to shared memory after each training step, and every worker, and
the main model after every step, copies them from there. Stochastic depth in worker r draws from a
generator seeded by (seed, step, r): a run is reproducible, and resumes exactly, for a given number of
processes (a run with another number of processes is a different run, as it is in PyTorch).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from contextlib import contextmanager
from multiprocessing import shared_memory

import numpy as np

import autograd as ag
from autograd.memory import is_retaining_freed_memory, retain_freed_memory
from autograd.nn import functional as F
from autograd.optim.flat import consecutive_views

from .engine import forward_backward

_ONE_THREAD = {
    name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
}


class WorkerFailed(RuntimeError):
    pass


class _SharedBlock:
    """Named arrays carved out of one shared-memory block (owned by the creator, attached by the others)."""

    def __init__(self, layout: dict, name: str | None = None):
        offsets, size = {}, 0  # layout: name -> (shape, dtype string)
        for key, (shape, dtype) in layout.items():
            offsets[key] = size
            size += int(np.prod(shape)) * np.dtype(dtype).itemsize
            size = (size + 63) // 64 * 64  # 64-byte aligned arrays
        self.memory = shared_memory.SharedMemory(name=name, create=name is None, size=max(size, 64))
        self.arrays = {
            key: np.ndarray(shape, dtype, buffer=self.memory.buf, offset=offsets[key])
            for key, (shape, dtype) in layout.items()
        }

    def close(self, unlink: bool):
        self.arrays = {}
        self.memory.close()
        if unlink:
            self.memory.unlink()


def batch_slices(batch_size: int, processes: int) -> list[tuple[int, int]]:
    """The (start, stop) rows of a batch that each of ``processes`` workers takes, as even as they can be;
    each worker's BatchNorm layers normalise its slice alone."""
    bounds = np.linspace(0, batch_size, processes + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def _flat_views(params, flat: np.ndarray) -> list:
    """One view into ``flat`` per parameter, shaped like it, in order: the layout of every flat buffer
    here."""
    return consecutive_views(flat, [p.shape for p in params])


def _buffer_key(name: str) -> str:
    return "buffer:" + name


def _copy_buffers(arrays, named_buffers, into_model: bool) -> None:
    """Shared memory -> the model's buffers (``into_model``), or the model's buffers -> shared memory."""
    for name, buffer in named_buffers:
        shared = arrays[_buffer_key(name)]
        if into_model:
            buffer.data = shared.copy()
        else:
            shared[...] = buffer.data


def _worker_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def _worker_main(rank, make_model, block_name, layout, connection, retain_memory):
    """A worker's loop: wait for a command, compute on its slice of the shared buffers, answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if retain_memory:  # as the main process does (autograd/memory.py)
        retain_freed_memory()
    block = _SharedBlock(layout, name=block_name)
    try:
        model = make_model()
        params = list(model.parameters())
        for p, view in zip(params, _flat_views(params, block.arrays["weights"]), strict=False):
            p.data = view  # the shared weights, not a copy
        grads = _flat_views(params, block.arrays["grads"][rank])
        buffers = list(model.named_buffers())
        x_all, out_all = block.arrays["inputs"][rank], block.arrays["logits"][rank]
        labels_all, soft_all = block.arrays["labels"][rank], block.arrays["soft_targets"][rank]
        while True:
            command = connection.recv()
            if command[0] == "stop":
                return
            try:
                kind, n, shape, soft, label_smoothing, weight, seed = command
                _copy_buffers(block.arrays, buffers, into_model=True)
                x = x_all[: n * int(np.prod(shape))].reshape(n, *shape)
                target = soft_all[:n] if soft else labels_all[:n]
                if kind == "train":  # the training step of one process, on this worker's slice
                    ag.manual_seed(seed)
                    model.train()
                    answer, logits = forward_backward(model, x, target, "cpu", label_smoothing)
                    for p, view in zip(params, grads, strict=False):
                        if p.grad is None:
                            view[:] = 0
                        else:
                            np.multiply(p.grad.data, view.dtype.type(weight), out=view)
                    if rank == 0:
                        _copy_buffers(block.arrays, buffers, into_model=False)
                else:  # "eval": summed loss, no graph
                    model.eval()
                    with ag.no_grad():
                        output = model(ag.tensor(x))
                        answer = float(F.cross_entropy(output, ag.tensor(target), reduction="sum").item())
                        logits = output.numpy()
                out_all[:n] = logits
                connection.send(("ok", answer))
            except Exception:  # report, stay alive; the main process decides
                connection.send(("error", traceback.format_exc()))
    finally:
        block.close(unlink=False)


@contextmanager
def _environment(values: dict):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _one_numpy_dtype(params) -> str:
    """The one float dtype of ``params``, all NumPy arrays; else ``ValueError``."""
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1 or any(not isinstance(p.data, np.ndarray) for p in params):
        raise ValueError(
            f"DataParallel runs NumPy models with one float dtype, got {sorted(map(str, dtypes))} "
            f"on {type(params[0].data).__module__}"
        )
    return str(dtypes.pop())


def _shared_layout(total: int, dtype: str, processes: int, slice_size: int, input_shape, num_classes: int):
    """The shared arrays but the buffers, name -> (shape, dtype): the ``total`` weights, and each worker's
    gradients and its slice's inputs (flat), labels, soft targets and logits, for up to ``slice_size``
    images of at most ``input_shape``."""
    return {
        "weights": ((total,), dtype),
        "grads": ((processes, total), dtype),
        "inputs": ((processes, slice_size * int(np.prod(input_shape))), dtype),
        "labels": ((processes, slice_size), "int64"),
        "soft_targets": ((processes, slice_size, num_classes), dtype),
        "logits": ((processes, slice_size, num_classes), dtype),
    }


class DataParallel:
    """Run a model's training and evaluation steps on ``processes`` single-threaded worker processes.

    Args:
        model: the main process's model. Its parameters are moved into shared memory (same values) and
            stay there: the optimizer built on them keeps working, and every worker sees its updates.
        make_model: a picklable function building the same architecture (the workers' copies).
        processes: number of worker processes (at least 1; the number of cores is the natural choice).
        max_batch: the largest batch that ``train_step`` or ``eval_step`` will get.
        input_shape: (C, H, W) of the largest input (smaller ones fit too: progressive resizing).
        num_classes: the logits' width.
        seed: the run's seed, for the workers' stochastic depth.
    Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self, model, make_model, processes: int, max_batch: int, input_shape, num_classes: int, seed: int = 0
    ):
        if processes < 1:
            raise ValueError(f"DataParallel needs at least 1 process, got {processes}")
        if max_batch < processes:
            raise ValueError(f"a batch of {max_batch} cannot be split over {processes} processes")
        params = list(model.parameters())
        dtype = _one_numpy_dtype(params)
        self.model, self.processes, self.seed = model, processes, seed
        self.slice_size = -(-max_batch // processes)  # ceil
        self.input_shape = tuple(input_shape)  # the largest input; each batch sends its own (C, H, W)
        total = sum(p.size for p in params)
        self.buffers = list(model.named_buffers())
        layout = _shared_layout(total, dtype, processes, self.slice_size, input_shape, num_classes)
        layout.update({_buffer_key(name): (tuple(b.shape), str(b.dtype)) for name, b in self.buffers})
        self.block = _SharedBlock(layout)
        _copy_buffers(self.block.arrays, self.buffers, into_model=False)
        for p, view in zip(params, _flat_views(params, self.block.arrays["weights"]), strict=False):
            view[...] = p.data
            p.data = view  # from now on the optimizer updates the shared weights in place
        self.grad_sum = np.zeros(total, dtype)
        self.grad_views = _flat_views(params, self.grad_sum)
        self._start_workers(make_model, layout)

    def _start_workers(self, make_model, layout: dict) -> None:
        """One spawned worker process per rank, each with its end of a pipe; on any failure, close all."""
        self.connections, self.workers = [], []
        context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked thread pools
        try:
            with _environment(_ONE_THREAD):
                for rank in range(self.processes):
                    ours, theirs = context.Pipe()
                    worker = context.Process(
                        target=_worker_main,
                        daemon=True,
                        name=f"data-parallel-{rank}",
                        args=(
                            rank,
                            make_model,
                            self.block.memory.name,
                            layout,
                            theirs,
                            is_retaining_freed_memory(),
                        ),
                    )
                    worker.start()
                    theirs.close()
                    self.connections.append(ours)
                    self.workers.append(worker)
        except BaseException:
            self.close()
            raise

    # -- the two steps ---------------------------------------------------------------------------
    def _run(self, kind, x, y, label_smoothing=0.0, step=0):
        x = np.asarray(x)
        y = np.asarray(y)
        batch = len(x)
        if batch > self.slice_size * self.processes:
            raise ValueError(
                f"batch of {batch} is larger than the {self.slice_size * self.processes} this "
                "DataParallel was built for (max_batch)"
            )
        if batch < self.processes:
            raise ValueError(f"a batch of {batch} cannot be split over {self.processes} processes")
        channels, height, width = self.input_shape
        if x.ndim != 4 or x.shape[1] != channels or x.shape[2] > height or x.shape[3] > width:
            raise ValueError(
                f"expected inputs of shape (N, {channels}, H, W) with H <= {height} and W <= {width} "
                f"(the input_shape this DataParallel was built for), got {x.shape}"
            )
        soft = y.ndim == 2
        arrays = self.block.arrays
        slices = batch_slices(batch, self.processes)
        for rank, (a, b) in enumerate(slices):
            arrays["inputs"][rank, : (b - a) * x[0].size] = x[a:b].reshape(-1)
            if soft:
                arrays["soft_targets"][rank, : b - a] = y[a:b]
            else:
                arrays["labels"][rank, : b - a] = y[a:b]
            self.connections[rank].send(
                (
                    kind,
                    b - a,
                    x.shape[1:],
                    soft,
                    label_smoothing,
                    (b - a) / batch,
                    _worker_seed(self.seed, step, rank),
                )
            )
        answers = [self._receive(rank) for rank in range(self.processes)]
        logits = np.concatenate([arrays["logits"][rank, : b - a] for rank, (a, b) in enumerate(slices)])
        return answers, logits, slices

    def _receive(self, rank):
        try:
            status, value = self.connections[rank].recv()
        except (EOFError, ConnectionError) as error:
            raise WorkerFailed(
                f"data-parallel worker {rank} died (exit code {self.workers[rank].exitcode})"
            ) from error
        if status == "error":
            raise WorkerFailed(f"data-parallel worker {rank} failed:\n{value}")
        return value

    def train_step(self, x, y, label_smoothing: float = 0.0, step: int = 0):
        """Forward and backward of the batch's mean cross-entropy, split over the workers.

        Leaves the summed gradient in the main model's ``.grad`` (ready for clipping and the optimizer)
        and returns (mean loss of the batch, logits as a NumPy array). ``y``: labels (N,) or soft targets
        (N, classes), for which ``label_smoothing`` is not applied (as the single-process loop)."""
        answers, logits, slices = self._run("train", x, y, label_smoothing, step)
        _copy_buffers(self.block.arrays, self.buffers, into_model=True)  # rank 0's running statistics
        loss = sum(value * (b - a) / len(x) for value, (a, b) in zip(answers, slices, strict=False))
        np.sum(self.block.arrays["grads"], axis=0, out=self.grad_sum)
        for p, view in zip(self.model.parameters(), self.grad_views, strict=False):
            p.grad = ag.Tensor(view)
        return loss, logits

    def share_buffers(self):
        """Send the main model's buffers to the workers (after changing them outside a training step, as
        ``autograd.nn.recompute_batchnorm_statistics`` does); they read them before every command."""
        _copy_buffers(self.block.arrays, self.buffers, into_model=False)

    def eval_step(self, x, y):
        """(summed cross-entropy, logits) of a batch in eval mode, without a graph."""
        answers, logits, _ = self._run("eval", x, y)
        return float(sum(answers)), logits

    # -- lifetime --------------------------------------------------------------------------------
    def close(self):
        """Stop the workers and free the shared memory; the main model keeps its (copied) weights."""
        for connection in self.connections:
            try:
                connection.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for connection in self.connections:
            connection.close()
        self.connections, self.workers = [], []
        if getattr(self, "block", None) is not None:
            for p in self.model.parameters():  # copies: the shared block is about to go away
                p.data = np.array(p.data, copy=True)
            self.block.close(unlink=True)
            self.block = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
