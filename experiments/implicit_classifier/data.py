"""Synthetic interleaved spirals (no downloads)."""
from __future__ import annotations

import numpy as np


def spirals(n_per_class: int, n_classes: int = 3, noise: float = 0.15, turns: float = 1.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spirals.

    Args:
      n_per_class: points per arm.
      n_classes: number of arms (= classes), >= 2.
      noise: std of the Gaussian jitter added to the points.
      turns: how many turns each arm makes.
      seed: NumPy seed.

    Returns:
      x (N, 2) float32 in about [-1, 1]^2, y (N,) int32 labels; N = n_per_class * n_classes,
      shuffled.
    """
    if n_per_class < 1 or n_classes < 2:
        raise ValueError(f"spirals: need n_per_class >= 1 and n_classes >= 2, got {n_per_class}, {n_classes}")
    rng = np.random.default_rng(seed)
    r = np.linspace(0.05, 1.0, n_per_class)
    xs, ys = [], []
    for k in range(n_classes):
        t = 2 * np.pi * (turns * r + k / n_classes)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1) + noise * r[:, None] * rng.normal(size=(n_per_class, 2))
        xs.append(pts)
        ys.append(np.full(n_per_class, k))
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int32)
    perm = rng.permutation(len(y))
    return x[perm], y[perm]
