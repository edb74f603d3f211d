"""SGD with momentum and Nesterov momentum, PyTorch's formulation (for the ResNet baseline of the lessons).

g <- g + weight_decay * p                       (L2 penalty, coupled, as torch.optim.SGD)
b <- momentum * b + (1 - dampening) * g         (b = g at the first step)
update = g + momentum * b if nesterov else b
p <- p - lr * update
"""

from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: invalid hyper-parameters lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
            )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening 0")
        super().__init__(
            params,
            dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov),
        )

    def step(self) -> None:
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * p.data
                if momentum:
                    state = self.state.setdefault(id(p), {})
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = g.copy()
                    else:
                        buffer = state["momentum_buffer"]
                        buffer *= momentum
                        buffer += (1 - group["dampening"]) * g
                    buffer = state["momentum_buffer"]
                    g = g + momentum * buffer if group["nesterov"] else buffer
                p.data -= group["lr"] * g
