"""The contract every solver implements (:class:`AbstractSolver`), and shared helpers.

A solver is a frozen (hashable) dataclass deriving from :class:`AbstractSolver`. The generic
loop (:mod:`.loop`) owns the f-evaluations, the residuals, the best-iterate bookkeeping and
the stopping rule; a solver only decides where to evaluate f next. All arrays are per-sample
flattened states: ``x``, ``fx`` of shape (B, D).
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import jax
import jax.numpy as jnp


class AbstractSolver(abc.ABC):
    """A fixed-point solver driven by :func:`deq_flow_jax.solvers.loop.solve_flat`.

    Subclasses are frozen dataclasses (hashable: they are static arguments of ``jit`` and
    ``custom_vjp``) and implement ``init``, ``propose`` and ``update``.

    Class attributes:
      first_candidate_step: steps before this count are warm-up and never returned.
      accept_slack: a step is the new best when ``res < lowest + accept_slack``.
      capture_offset: capture index i is taken after step i - capture_offset.
    """

    first_candidate_step: int = 1
    accept_slack: float = 0.0
    capture_offset: int = 0

    @abc.abstractmethod
    def init(self, z0: jax.Array, fn: Callable[[jax.Array], jax.Array], max_steps: int) -> Any:
        """The solver state: a pytree whose leaves have a leading axis B.

        ``z0`` is (B, D); ``fn`` maps (B, D) -> (B, D) (Broyden evaluates it once, at z0).
        """

    @abc.abstractmethod
    def propose(self, state: Any) -> jax.Array:
        """The (B, D) point to evaluate at the next step."""

    @abc.abstractmethod
    def update(self, state: Any, k: jax.Array, x: jax.Array, fx: jax.Array) -> tuple[Any, jax.Array]:
        """Incorporates f(x) = fx at step index ``k`` (0-based, step count k + 1).

        Returns (new state, candidate): the (B, D) candidate is what the solver returns if
        this step turns out to have the lowest residual.
        """

    def stalled(self, stop_trace: jax.Array, k: jax.Array, res: jax.Array, tol: float) -> jax.Array:
        """An extra per-sample stopping rule, (B,) bool (default: never)."""
        del stop_trace, k, tol
        return jnp.zeros(res.shape, bool)


def bdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-sample inner product of (B, D) arrays -> (B,)."""
    return jnp.einsum("bd,bd->b", a, b)


def where_b(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``where`` with a (B,) mask broadcast over the trailing axes of (B, ...) arrays."""
    return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (a.ndim - 1)), a, b)
