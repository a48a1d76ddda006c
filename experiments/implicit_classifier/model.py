"""The implicit classifier: z* = tanh(W z* + U phi(x) + b), logits = V z* + c.

Parameters are a plain dict pytree; ``cell(z, (params, x))`` is the ``fn`` handed to
:func:`deq_flow_jax.equilibrium.fixed_point`. phi(x) are random Fourier features of the 2-D
input, so that a narrow equilibrium layer separates the spirals.
"""
from __future__ import annotations

from typing import Any, Dict

import jax
import jax.numpy as jnp

from deq_flow_jax.equilibrium import fixed_point

Params = Dict[str, jax.Array]


def init_params(key: jax.Array, hidden: int = 32, n_features: int = 64, n_classes: int = 3,
                w_scale: float = 0.5, freq: float = 3.0) -> Params:
    """Random initial parameters; W has spectral norm about ``w_scale`` (a contraction)."""
    k = jax.random.split(key, 5)
    W = jax.random.normal(k[0], (hidden, hidden)) / jnp.sqrt(hidden) * (w_scale / 2.0)
    return {
        "W": W,
        "U": jax.random.normal(k[1], (hidden, n_features)) / jnp.sqrt(n_features),
        "b": jnp.zeros((hidden,)),
        "V": jax.random.normal(k[2], (n_classes, hidden)) / jnp.sqrt(hidden),
        "c": jnp.zeros((n_classes,)),
        # fixed (not trained) Fourier projection; kept in params for a single pytree
        "proj": freq * jax.random.normal(k[3], (n_features // 2, 2)),
    }


def features(params: Params, x: jax.Array) -> jax.Array:
    """(N, 2) -> (N, n_features) random Fourier features."""
    p = x @ jax.lax.stop_gradient(params["proj"]).T
    return jnp.concatenate([jnp.sin(p), jnp.cos(p)], axis=1)


def cell(z: jax.Array, args: Any) -> jax.Array:
    """The equilibrium map f(z; params, x): (N, hidden) -> (N, hidden)."""
    params, inj = args
    return jnp.tanh(z @ params["W"].T + inj + params["b"])


def forward(params: Params, x: jax.Array, *, solver, adjoint, max_steps: int = 30, tol: float = 1e-4,
            bwd_probe=None):
    """Logits (N, n_classes) and the solver's Solution for inputs x (N, 2)."""
    inj = features(params, x) @ params["U"].T
    z0 = jnp.zeros((x.shape[0], params["W"].shape[0]), x.dtype)
    sol = fixed_point(cell, z0, (params, inj), solver=solver, max_steps=max_steps, tol=tol,
                      adjoint=adjoint, bwd_probe=bwd_probe)
    return sol.value @ params["V"].T + params["c"], sol
