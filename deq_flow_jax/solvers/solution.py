"""The statistics a solve returns (:class:`SolverStats`).

A ``NamedTuple``, hence a pytree: it can be returned from ``jax.jit``, ``jax.vmap`` and
``shard_map`` bodies and logged leaf by leaf. (:class:`deq_flow_jax.equilibrium.Solution`
wraps it with the value and the captured states.)
"""
from __future__ import annotations

from typing import NamedTuple

import jax


class SolverStats(NamedTuple):
    """Per-sample statistics of one fixed-point solve (B = batch size).

    Attributes:
      nstep: (B,) int32, the step count of the returned (lowest-residual) iterate, in the
        official counting: for Anderson and fixed-point iteration the number of
        f-evaluations made up to that iterate; for Broyden the number of Broyden updates
        (it evaluates f once more, at z0, before its first update). 0 when no step
        produced a finite residual (the returned value is then z0).
      abs_lowest: (B,) the lowest ||f(z) - z|| seen (over each sample's flattened state).
      rel_lowest: (B,) the lowest ||f(z) - z|| / (||f(z)|| + 1e-8) seen. Like the
        official code, both lowest values are tracked independently: the one of the
        non-stop mode need not belong to the returned iterate.
      abs_trace: (max_steps, B) residual of step t+1 in row t; once a sample stops, its
        remaining rows hold its lowest value (the official "fill up" rule).
      rel_trace: (max_steps, B) same for the relative residual.
      converged: (B,) bool, lowest residual of the stop mode below ``tol``.
    """

    nstep: jax.Array
    abs_lowest: jax.Array
    rel_lowest: jax.Array
    abs_trace: jax.Array
    rel_trace: jax.Array
    converged: jax.Array
