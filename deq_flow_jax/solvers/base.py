"""The protocol every solver implements, and shared helpers.

A solver is a frozen (hashable) dataclass. The generic loop (:mod:`.loop`) owns the
f-evaluations, the residuals, the best-iterate bookkeeping and the stopping rule; a solver
only decides where to evaluate f next. All arrays are per-sample flattened states:
``x``, ``fx`` of shape (B, D).

Methods:
  ``init(z0, fn) -> state``: ``z0`` (B, D); ``fn`` maps (B, D) -> (B, D) (Broyden uses it
    once, to get g(z0)). ``state`` is a pytree whose leaves have a leading axis B.
  ``propose(state) -> x``: the (B, D) point to evaluate at the next step.
  ``update(state, k, x, fx) -> (state, candidate)``: incorporate f(x) = fx at step index
    ``k`` (0-based, step count k + 1); ``candidate`` (B, D) is what the solver returns if
    this step turns out to have the lowest residual.
  ``stalled(stop_trace, k, res, tol) -> (B,) bool``: an extra per-sample stopping rule.

Attributes:
  ``first_candidate_step``: steps before this count are warm-up and never returned.
  ``accept_slack``: a step is the new best when ``res < lowest + accept_slack``.
  ``capture_offset``: capture index i is taken after step i - capture_offset.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


class SolverBase:
    """Defaults shared by the solvers (mixin for frozen dataclasses)."""

    first_candidate_step: int = 1
    accept_slack: float = 0.0
    capture_offset: int = 0

    def stalled(self, stop_trace: jax.Array, k: jax.Array, res: jax.Array, tol: float) -> jax.Array:
        del stop_trace, k, tol
        return jnp.zeros(res.shape, bool)


def bdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-sample inner product of (B, D) arrays -> (B,)."""
    return jnp.einsum("bd,bd->b", a, b)


def where_b(mask: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """``where`` with a (B,) mask broadcast over the trailing axes of (B, ...) arrays."""
    return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (a.ndim - 1)), a, b)
