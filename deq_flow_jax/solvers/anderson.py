"""Anderson acceleration (type II, with a ridge), the official ``anderson`` solver.

With history size m, residuals g_i = f(x_i) - x_i of the last n = min(k, m) steps and
G = [g_i] (n, D), the next iterate is

    x_{k} = beta * sum_i alpha_i f(x_i) + (1 - beta) * sum_i alpha_i x_i,
    alpha = argmin ||alpha^T G||^2 + ridge ||alpha||^2  s.t.  sum alpha = 1,

solved per sample (the official code solves the bordered (n+1) x (n+1) system; we use
its closed form alpha = M^-1 1 / 1^T M^-1 1 with M = G G^T + ridge I, by Cholesky). As
there, the first two steps are x_0 = z0 and x_1 = f(z0) (warm-up: never returned), and
the step count of an iterate is its number of f-evaluations.

Fixed shapes: the ring buffers are (B, m, D); the system is always m x m, with
the unused slots decoupled (identity rows, zero right-hand side), which gives the same
alpha as the official n x n solve. The Gram matrix G G^T is kept in the state and only
the new row is computed each step (m*D flops instead of m^2*D).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from deq_flow_jax.solvers.base import AbstractSolver

_HI = jax.lax.Precision.HIGHEST


class AndersonState(NamedTuple):
    x: jax.Array     # (B, D) next point to evaluate
    F: jax.Array     # (B, m, D) f-outputs, ring buffer
    G: jax.Array     # (B, m, D) residuals f(x) - x, ring buffer
    gram: jax.Array  # (B, m, m) G G^T


@dataclasses.dataclass(frozen=True)
class Anderson(AbstractSolver):
    """Anderson acceleration.

    Attributes:
      m: history size.
      ridge: Tikhonov term added to G G^T (the official ``lam``).
      beta: mixing between f-outputs (1.0) and inputs (0.0).
    """

    m: int = 6
    ridge: float = 1e-4
    beta: float = 1.0

    first_candidate_step = 3

    def __post_init__(self):
        if int(self.m) < 1:
            raise ValueError(f"Anderson: history size m must be >= 1, got {self.m}")
        if self.ridge < 0:
            raise ValueError(f"Anderson: ridge must be >= 0, got {self.ridge}")

    def init(self, z0, fn, max_steps: int = 40):
        del fn, max_steps
        b, d = z0.shape
        zeros = jnp.zeros((b, self.m, d), z0.dtype)
        return AndersonState(x=z0, F=zeros, G=zeros, gram=jnp.zeros((b, self.m, self.m), z0.dtype))

    def propose(self, state):
        return state.x

    def update(self, state, k, x, fx):
        m = self.m
        slot = k % m
        g = fx - x
        F = jax.lax.dynamic_update_index_in_dim(state.F, fx, slot, axis=1)
        G = jax.lax.dynamic_update_index_in_dim(state.G, g, slot, axis=1)
        row = jnp.einsum("bmd,bd->bm", G, g, precision=_HI)
        gram = jax.lax.dynamic_update_index_in_dim(state.gram, row, slot, axis=1)
        gram = jax.lax.dynamic_update_index_in_dim(gram, row, slot, axis=2)

        alpha = self._weights(gram, jnp.minimum(k + 1, m), slot)
        x_mix = jnp.einsum("bm,bmd->bd", alpha, F, precision=_HI)
        if self.beta != 1.0:
            # X = F - G, so beta*aF + (1-beta)*aX = aF - (1-beta)*aG
            x_mix = x_mix - (1.0 - self.beta) * jnp.einsum("bm,bmd->bd", alpha, G, precision=_HI)
        x_next = jnp.where(k == 0, fx, x_mix)
        return AndersonState(x=x_next, F=F, G=G, gram=gram), fx

    def _weights(self, gram, n, slot):
        """Mixing weights (B, m) over the first n slots.

        The bordered system [[0, 1^T], [1, M]] [mu; alpha] = [1; 0] with M = G G^T + ridge*I
        has the solution alpha = M^-1 1 / (1^T M^-1 1); M is symmetric positive definite for
        ridge > 0, so a Cholesky solve is used (far cheaper to compile than an LU solve).
        Unused slots get identity rows and a zero right-hand side, hence alpha = 0 there.
        """
        b, m, _ = gram.shape
        dtype = gram.dtype
        used = jnp.arange(m) < n                                     # (m,)
        both = used[:, None] & used[None, :]
        eye = jnp.eye(m, dtype=dtype)
        M = jnp.where(both, gram + self.ridge * eye, eye)             # (B, m, m)
        rhs = jnp.broadcast_to(used.astype(dtype)[:, None], (b, m, 1))
        chol = jax.lax.linalg.cholesky(M, symmetrize_input=False)
        v = jax.lax.linalg.triangular_solve(chol, rhs, left_side=True, lower=True)
        v = jax.lax.linalg.triangular_solve(chol, v, left_side=True, lower=True, transpose_a=True)[..., 0]
        alpha = v / jnp.sum(v, axis=1, keepdims=True)
        ok = jnp.all(jnp.isfinite(alpha), axis=1, keepdims=True)
        # a singular or non-finite system falls back to a plain iteration step
        fallback = jax.nn.one_hot(slot, m, dtype=dtype)[None, :]
        return jnp.where(ok, alpha, fallback)
