"""Optimizers (AdamW, SGD), learning-rate schedules and the usual parameter grouping."""

from .. import _identity  # noqa: F401  (first: stops if another autograd's __init__ ran)
from .adamw import AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .schedule import cosine_with_warmup, set_lr  # noqa: F401
from .sgd import SGD  # noqa: F401


def weight_decay_groups(named_parameters, weight_decay: float, skip=("gamma",)):
    """Two groups: decay for weight matrices and conv kernels; none for biases, norm weights (every 1-D
    parameter) and parameters whose name ends with a name in ``skip`` (ConvNeXt's layer-scale gammas)."""
    decay, no_decay = [], []
    for name, p in named_parameters:
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.split(".")[-1] in skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
