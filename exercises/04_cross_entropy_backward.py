"""Exercise 04, after lesson 04 (gradient checking): the backward of softmax cross-entropy, by hand.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_04_cross_entropy_backward.py
"""

import numpy as np


def cross_entropy_backward(
    logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0
) -> np.ndarray:
    """d loss / d logits for the mean softmax cross-entropy over a batch.

    With p = softmax(z_i) and the target distribution q_i (one-hot at labels[i], smoothed to
    (1 - s) q_i + s / K), loss = (1/N) sum_i -sum_k q_ik log p_ik, and

        d loss / d z_ik = (p_ik - q_ik) / N.

    Args:
        logits: (N, K) float64 scores.
        labels: (N,) integer classes in [0, K).
        label_smoothing: s in [0, 1].
    Returns:
        (N, K) float64, what ``autograd.nn.functional.cross_entropy(logits, labels, label_smoothing=s)``
        puts in ``logits.grad``.
    Hint: subtract each row's maximum before ``np.exp``, so that a large logit cannot overflow.
    """
    raise NotImplementedError("exercise 04: write cross_entropy_backward")
