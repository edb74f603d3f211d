"""Exercise 12, after lesson 11 (training on CIFAR-10): the learning rate of linear warmup, then cosine decay.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_12_warmup_cosine_schedule.py
"""

import math  # noqa: F401  (math.cos and math.pi: for your body)


def warmup_cosine_lr(
    step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0
) -> float:
    """The learning rate at ``step`` (0-based) of a run of ``total_steps`` steps, as ConvNeXt's recipe (timm):

        step < warmup_steps:  base_lr * (step + 1) / warmup_steps           (linear warmup, never 0)
        otherwise:            min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2,
                              progress = (step - warmup_steps) / (total_steps - warmup_steps), at most 1

    Warmup lets AdamW's second-moment estimates settle before full-size steps; the cosine ends the run with
    small steps that settle into a minimum.

    Args:
        step: 0-based; may go past the end (the rate then stays at min_lr).
        total_steps: the run's length, at least 1; warmup_steps: 0 or more, at most total_steps.
        base_lr, min_lr: the highest and the final rate.
    Returns:
        The learning rate, a float.
    Hint: guard the division when total_steps == warmup_steps (use max(1, ...)).
    """
    raise NotImplementedError("exercise 12: write warmup_cosine_lr")
