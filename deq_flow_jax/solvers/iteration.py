"""Plain (damped) fixed-point iteration: z <- (1 - tau) z + tau f(z)."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax

from deq_flow_jax.solvers.base import AbstractSolver


class IterationState(NamedTuple):
    x: jax.Array  # (B, D) next point to evaluate


@dataclasses.dataclass(frozen=True)
class FixedPointIteration(AbstractSolver):
    """Damped fixed-point iteration, the official ``naive_solver`` for ``tau=1``.

    Attributes:
      tau: damping; the next iterate is ``(1 - tau) x + tau f(x)``.
      return_final: reproduce the official ``return_final=True`` rule: a step replaces the
        best one when its residual is below the best's plus 1, so in practice the last
        f-output is returned (and ``nstep`` is the last step). ``False`` returns the
        lowest-residual f-output.
    """

    tau: float = 1.0
    return_final: bool = True

    def __post_init__(self):
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"FixedPointIteration: tau must be in (0, 1], got {self.tau}")

    @property
    def accept_slack(self) -> float:  # type: ignore[override]
        return 1.0 if self.return_final else 0.0

    def init(self, z0, fn, max_steps: int = 40):
        del fn, max_steps
        return IterationState(x=z0)

    def propose(self, state):
        return state.x

    def update(self, state, k, x, fx):
        del state, k
        nxt = fx if self.tau == 1.0 else (1.0 - self.tau) * x + self.tau * fx
        return IterationState(x=nxt), fx
