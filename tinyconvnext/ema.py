"""Exponential moving average of a model's weights (Polyak averaging; the paper evaluates an EMA, Section 2.1).

After every optimizer step:  ema <- decay * ema + (1 - decay) * weights  (buffers are copied). Evaluating
the averaged weights is usually a little better and much smoother than evaluating the last ones.
"""

from __future__ import annotations

import numpy as np

from autograd.backend import to_numpy


class ModelEma:
    def __init__(self, model, decay: float = 0.9998):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.state = {name: np.array(to_numpy(p.data), dtype=np.float32, copy=True)
                      for name, p in list(model.named_parameters()) + list(model.named_buffers())}

    def update(self, model) -> None:
        d = np.float32(self.decay)
        for name, p in model.named_parameters():
            average = self.state[name]
            average *= d
            average += (1 - d) * to_numpy(p.data)
        for name, b in model.named_buffers():
            self.state[name] = np.array(to_numpy(b.data), copy=True)

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.state) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)}")
        self.state = {k: np.array(state[k], dtype=self.state[k].dtype, copy=True) for k in self.state}

    def copy_to(self, model) -> None:
        """Load the averaged weights into ``model`` (e.g. a second instance used for evaluation)."""
        model.load_state_dict(self.state)
