"""Batches prepared in a background thread, so the model never waits on augmentation.

An epoch is a permutation of the data set drawn from (seed, epoch); batch i of that epoch is augmented
with a generator seeded by (seed, epoch, i). So the batches are the same whatever the timing of the
threads, and resuming at (epoch, batch) reproduces them exactly. NumPy and Pillow release the GIL in their
heavy loops, so the worker thread runs beside the training step.
"""

from __future__ import annotations

import queue
import threading

import numpy as np


class BatchLoader:
    """Iterate over (inputs, targets) batches of one epoch.

    Args:
        num_items: the size of the data set.
        make_batch: ``make_batch(indices, rng, **options) -> (inputs, targets)`` builds one batch; the
            options are those given to ``epoch`` (e.g. the epoch's image size).
        batch_size, shuffle, drop_last: as PyTorch's DataLoader.
        seed: the run's seed. prefetch: batches prepared ahead (0: no background thread).
        pass_epoch: also give ``make_batch`` the batch's ``epoch=``, for augmentations that follow the
            epoch (alternating flips).
    """

    def __init__(
        self,
        num_items,
        make_batch,
        batch_size,
        shuffle=True,
        drop_last=False,
        seed=0,
        prefetch=2,
        pass_epoch=False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_items, self.make_batch, self.batch_size = num_items, make_batch, batch_size
        self.shuffle, self.drop_last, self.seed, self.prefetch = shuffle, drop_last, seed, prefetch
        self.pass_epoch = pass_epoch

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        order = (
            np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
            if self.shuffle
            else np.arange(self.num_items)
        )
        return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(len(self))]

    def _build(self, epoch, i, indices, options):
        if self.pass_epoch:
            options = {**options, "epoch": epoch}
        return self.make_batch(indices, np.random.default_rng([self.seed, epoch, i, 1]), **options)

    def epoch(self, epoch: int, start_batch: int = 0, **options):
        """Yield the batches of ``epoch`` from ``start_batch`` on (to resume in the middle of an epoch);
        ``options`` go to every ``make_batch`` call of this epoch."""
        batches = self.batch_indices(epoch)[start_batch:]
        if self.prefetch <= 0:
            for i, indices in enumerate(batches, start_batch):
                yield self._build(epoch, i, indices, options)
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def work():
            try:
                for i, indices in enumerate(batches, start_batch):
                    if stop.is_set():
                        return
                    ready.put(("batch", self._build(epoch, i, indices, options)))
                ready.put(("done", None))
            except BaseException as error:  # hand the error to the consumer
                ready.put(("error", error))

        worker = threading.Thread(target=work, daemon=True, name=f"batches-epoch-{epoch}")
        worker.start()
        try:
            while True:
                kind, value = ready.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()
            while worker.is_alive():  # let a blocked put() finish so the thread can see the stop flag
                try:
                    ready.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)
