"""Phantom gradients: k damped steps with gradients from the stopped-gradient fixed point."""
from __future__ import annotations

import dataclasses

import jax

from deq_flow_jax.adjoints.base import AbstractAdjoint


@dataclasses.dataclass(frozen=True)
class Phantom(AbstractAdjoint):
    """z <- (1 - tau) z + tau f(z, args), ``steps`` times, starting at stop_gradient(z*).

    The returned value is the result of these steps (so it costs ``steps`` extra
    f-evaluations); gradients flow to ``args`` through the unrolled steps only.
    ``Phantom(1)`` (tau=1) is the one-step gradient of the official code.

    Attributes:
      steps: number of unrolled steps k >= 1.
      tau: damping in (0, 1].
    """

    steps: int = 1
    tau: float = 1.0

    def __post_init__(self):
        if int(self.steps) < 1:
            raise ValueError(f"Phantom: steps must be >= 1, got {self.steps}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"Phantom: tau must be in (0, 1], got {self.tau}")

    def apply(self, fn, z_star, args):
        z = jax.lax.stop_gradient(z_star)
        for _ in range(int(self.steps)):
            fz = fn(z, args)
            if self.tau == 1.0:
                z = fz
            else:
                z = jax.tree_util.tree_map(lambda a, b: (1.0 - self.tau) * a + self.tau * b, z, fz)
        return z
