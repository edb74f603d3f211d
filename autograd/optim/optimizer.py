"""Optimizer: parameter groups, per-parameter state, zero_grad, and state dicts for exact resumption.

As in PyTorch, an optimizer takes either a list of parameters or a list of groups, each a dict with
"params" and any hyper-parameters that differ from the defaults (e.g. no weight decay for biases).
"""

from __future__ import annotations

import numpy as np

from ..backend import device_of, to_device, to_numpy


class Optimizer:
    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        seen = set()
        for group in groups:
            group = {**self.defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not p.requires_grad:
                    raise ValueError(
                        f"optimizer got a parameter of shape {p.shape} that does not require grad"
                    )
                if id(p) in seen:
                    raise ValueError(f"a parameter of shape {p.shape} appears in more than one group")
                seen.add(id(p))
            self.param_groups.append(group)
        self.state = {}  # id(param) -> dict of arrays and counters

    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    # -- state dicts: everything needed to continue exactly ---------------------------------
    def state_dict(self) -> dict:
        """Hyper-parameters of each group and the state of each parameter, by position, as NumPy arrays."""
        state = {}
        for index, p in enumerate(self.parameters()):
            if id(p) in self.state:
                state[index] = {
                    k: (np.array(to_numpy(v)) if hasattr(v, "shape") else v)
                    for k, v in self.state[id(p)].items()
                }
        groups = [
            {k: v for k, v in g.items() if k != "params"} | {"num_params": len(g["params"])}
            for g in self.param_groups
        ]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if [g["num_params"] for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"optimizer state has groups of sizes {[g['num_params'] for g in groups]}, "
                f"this optimizer {[len(g['params']) for g in self.param_groups]}"
            )
        params = list(self.parameters())
        for index, entry in state_dict["state"].items():
            p = params[int(index)]
            restored = {}
            for k, v in entry.items():
                if hasattr(v, "shape") and np.ndim(v) > 0:
                    if tuple(v.shape) != p.shape:
                        raise ValueError(
                            f"optimizer state '{k}' of parameter {index} has shape {tuple(v.shape)}, "
                            f"the parameter {p.shape}"
                        )
                    v = to_device(np.asarray(v, dtype=p.dtype), device_of(p.data))
                restored[k] = v
            self.state[id(p)] = restored
        for group, saved in zip(self.param_groups, groups, strict=False):
            group.update({k: v for k, v in saved.items() if k != "num_params"})
