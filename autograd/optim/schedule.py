"""Learning-rate schedules evaluated per step: linear warmup, then cosine decay (as timm / the paper)."""

from __future__ import annotations

import math


def cosine_with_warmup(
    step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0
) -> float:
    """lr at ``step`` (0-based): linear up to base_lr, then a half cosine to min_lr."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))


def set_lr(optimizer, lr: float) -> None:
    """Set every group's lr (a group may carry an "lr_scale", e.g. for layer-wise decay)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
