"""Seedable random numbers. Every random tensor comes from a ``Generator`` (the default one unless
one is passed), so a run is reproducible from ``autograd.manual_seed(seed)`` and its state can be
saved in a checkpoint and restored (``get_state`` / ``set_state``).

Values are drawn on the CPU with NumPy's PCG64 and moved to the tensor's device, so the same seed
gives the same numbers on every backend.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A source of random numbers (NumPy's PCG64 bit generator)."""

    def __init__(self, seed: int | None = None):
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> Generator:
        self.rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def get_state(self) -> dict:
        """A JSON-friendly snapshot of the state."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (as ``torch.manual_seed``)."""
    return default_generator.manual_seed(seed)


def resolve(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).rng
