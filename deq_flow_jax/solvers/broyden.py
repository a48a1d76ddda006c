"""Broyden's ("good") method with a low-rank inverse-Jacobian, the official ``broyden``.

Root finding on g(x) = f(x) - x. The inverse Jacobian estimate is -I + U V^T with
U, V stored as (B, L, D) buffers (zeros where unused, so no masking is needed). Each step
takes the full update x <- x + s with s = -(-I + U V^T) g(x) (no line search: the official
default ``ls=False``) and adds the rank-one correction

    v^T = dx^T (-I + U V^T),   u = (dx - (-I + U V^T) dg) / (v^T dg).

A zero or non-finite denominator leaves the estimate unchanged for that sample. As in the
official code, the returned candidate is the iterate x itself (not f(x)), steps count
Broyden updates (f is also evaluated once at z0), and a sample also stops when, after 30
steps, its residual is below 3*tol and its last 30 residuals vary by less than 1.3x.
Capture index i (official ``indexing``, counting f-evaluations) is taken after step i - 1.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from deq_flow_jax.solvers.base import AbstractSolver, bdot

_HI = jax.lax.Precision.HIGHEST


class BroydenState(NamedTuple):
    x: jax.Array    # (B, D) last evaluated point
    gx: jax.Array   # (B, D) g(x) = f(x) - x
    step: jax.Array  # (B, D) next update s
    U: jax.Array    # (B, L, D)
    VT: jax.Array   # (B, L, D)


def _matvec(U, VT, x):
    """(-I + U V^T) x per sample; U, VT (B, L, D), x (B, D)."""
    return -x + jnp.einsum("bld,bl->bd", U, jnp.einsum("bld,bd->bl", VT, x, precision=_HI), precision=_HI)


def _rmatvec(U, VT, x):
    """x^T (-I + U V^T) per sample."""
    return -x + jnp.einsum("bl,bld->bd", jnp.einsum("bd,bld->bl", x, U, precision=_HI), VT, precision=_HI)


@dataclasses.dataclass(frozen=True)
class Broyden(AbstractSolver):
    """Broyden's method.

    Attributes:
      memory: number of rank-one updates kept (ring buffer, the official ``LBFGS_thres``);
        ``None`` keeps all (= ``max_steps``, the official default).
      stall_window: the no-progress rule's window (0 disables it).
      stall_ratio: max/min residual ratio over the window below which progress is "hardly any".
      stall_factor: the rule applies only when the residual is below ``stall_factor * tol``.
    """

    memory: Optional[int] = None
    stall_window: int = 30
    stall_ratio: float = 1.3
    stall_factor: float = 3.0

    capture_offset = 1

    def __post_init__(self):
        if self.memory is not None and int(self.memory) < 1:
            raise ValueError(f"Broyden: memory must be >= 1 or None, got {self.memory}")

    def init(self, z0, fn, max_steps: int = 40):
        b, d = z0.shape
        mem = min(int(self.memory or max_steps), max_steps)
        gx = fn(z0) - z0
        zeros = jnp.zeros((b, mem, d), z0.dtype)
        return BroydenState(x=z0, gx=gx, step=gx, U=zeros, VT=zeros)

    def propose(self, state):
        return state.x + state.step

    def update(self, state, k, x, fx):
        mem = state.U.shape[1]
        slot = k % mem
        gx = fx - x
        dx = x - state.x
        dg = gx - state.gx
        # (-I + U V^T) is linear and state.step = -(-I + U V^T) gx_old, so one matvec at gx_new
        # gives both (-I + U V^T) dg and, after the rank-one update, the next step.
        mv = _matvec(state.U, state.VT, gx)
        mv_dg = mv + state.step
        vT = _rmatvec(state.U, state.VT, dx)
        denom = bdot(vT, dg)
        u = (dx - mv_dg) / denom[:, None]
        ok = (denom != 0) & jnp.all(jnp.isfinite(u), axis=1) & jnp.all(jnp.isfinite(vT), axis=1)
        u = jnp.where(ok[:, None], u, 0.0)
        vT = jnp.where(ok[:, None], vT, 0.0)
        step = -(mv + u * bdot(vT, gx)[:, None])
        if self.memory is not None:
            # a finite memory may wrap around: the overwritten column leaves the estimate.
            # (Only then: reading a slot of U before updating it makes XLA copy the buffer.)
            u_old = jax.lax.dynamic_index_in_dim(state.U, slot, axis=1, keepdims=False)
            v_old = jax.lax.dynamic_index_in_dim(state.VT, slot, axis=1, keepdims=False)
            step = step + u_old * bdot(v_old, gx)[:, None]
        U = jax.lax.dynamic_update_index_in_dim(state.U, u, slot, axis=1)
        VT = jax.lax.dynamic_update_index_in_dim(state.VT, vT, slot, axis=1)
        return BroydenState(x=x, gx=gx, step=step, U=U, VT=VT), x

    def stalled(self, stop_trace, k, res, tol):
        w = int(self.stall_window)
        if w <= 0:
            return jnp.zeros(res.shape, bool)
        rows = jnp.arange(stop_trace.shape[0])[:, None]
        inwin = (rows > k - w) & (rows <= k)
        hi = jnp.max(jnp.where(inwin, stop_trace, -jnp.inf), axis=0)
        lo = jnp.min(jnp.where(inwin, stop_trace, jnp.inf), axis=0)
        return (k + 1 > w) & (res < self.stall_factor * tol) & (hi / lo < self.stall_ratio)
