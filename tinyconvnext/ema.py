"""Exponential moving average of a model's weights (Polyak averaging; the paper evaluates an EMA,
Section 2.1).

After every optimizer step:  ema <- decay * ema + (1 - decay) * weights  (buffers are copied). Evaluating
the averaged weights is usually a little better and much smoother than evaluating the last ones.
The averages live on the model's device (NumPy or CuPy arrays), so a GPU run never copies its weights
to the host between steps; ``state_dict`` gives NumPy copies for checkpoints.
"""

from __future__ import annotations

import numpy as np

from autograd.backend import device_of, to_device, to_numpy


class ModelEma:
    def __init__(self, model, decay: float = 0.9998):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.state = {name: p.data.astype(np.float32, copy=True) for name, p in model.named_parameters()}
        self.state.update((name, b.data.copy()) for name, b in model.named_buffers())  # copied, not averaged

    def update(self, model) -> None:
        d = np.float32(self.decay)
        for name, p in model.named_parameters():
            average = self.state[name]
            average *= d
            average += p.data * (1 - d)
        self.copy_buffers(model)

    def copy_buffers(self, model) -> None:
        """Take ``model``'s buffers (BatchNorm's running statistics) as they are."""
        for name, b in model.named_buffers():
            self.state[name] = b.data.copy()

    def state_dict(self) -> dict:
        """The averages as NumPy arrays (copies), by parameter name."""
        return {name: np.array(to_numpy(value), copy=True) for name, value in self.state.items()}

    def load_state_dict(self, state: dict) -> None:
        """Load averages saved by ``state_dict``, onto the device the averages are on now."""
        missing = set(self.state) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)}")
        self.state = {
            k: to_device(np.array(to_numpy(state[k]), dtype=v.dtype, copy=True), device_of(v))
            for k, v in self.state.items()
        }

    def copy_to(self, model) -> None:
        """Load the averaged weights into ``model`` (e.g. a second instance used for evaluation)."""
        model.load_state_dict(self.state)
