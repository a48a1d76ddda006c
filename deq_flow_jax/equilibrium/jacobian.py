"""Jacobian tools for any ``fn(z, args) -> z`` on batched pytree states.

* :func:`jacobian_frobenius_sq`: Hutchinson estimate of ||J_f(z)||_F^2, differentiable
  w.r.t. ``args`` (a training penalty, the official ``jac_loss_estimate``).
* :func:`spectral_radius`: power iteration on J_f(z)^T per sample (the official
  ``power_method`` monitor).

Both use vector-Jacobian products only (``jax.vjp``); J is never formed.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from deq_flow_jax.solvers.flatten import batch_size_of


def _tree_sum_sq_per_sample(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(jnp.reshape(jnp.square(x), (x.shape[0], -1)), axis=1) for x in leaves)


def _tree_size(tree) -> int:
    return sum(int(jnp.size(x)) for x in jax.tree_util.tree_leaves(tree))


def _normal_like(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)])


def jacobian_frobenius_sq(fn: Callable[[Any, Any], Any], z: Any, args: Any, key: jax.Array,
                          n_probes: int = 1) -> jax.Array:
    """Hutchinson estimate of ||J||_F^2 / N, with J = d fn(z, args) / dz.

    Computes mean over ``n_probes`` Gaussian probes eps (shaped like the output of ``fn``)
    of ||eps^T J||^2, divided by N, the total number of elements of ``z`` (all leaves, batch
    included) - the official normalisation, which makes the value comparable across sizes.
    Its expectation is tr(J^T J) / N = ||J||_F^2 / N. Differentiable w.r.t. ``args``
    (and ``z``): wrap ``z`` in ``jax.lax.stop_gradient`` for a pure parameter penalty.

    Args:
      fn: ``fn(z, args) -> z``.
      z: pytree of (B, ...) arrays, the point (usually the fixed point z*).
      args: the arguments of ``fn``.
      key: PRNG key of the probes.
      n_probes: number of probes (static, >= 1).

    Returns:
      scalar.
    """
    if int(n_probes) < 1:
        raise ValueError(f"jacobian_frobenius_sq: n_probes must be >= 1, got {n_probes}")
    batch_size_of(z, "z")
    fz, vjp_fn = jax.vjp(lambda zz: fn(zz, args), z)

    def one(total, i):
        eps = _normal_like(jax.random.fold_in(key, i), fz)
        (eps_j,) = vjp_fn(eps)
        return total + jnp.sum(_tree_sum_sq_per_sample(eps_j)), None

    dtype = jax.tree_util.tree_leaves(fz)[0].dtype
    if int(n_probes) == 1:
        total, _ = one(jnp.zeros((), dtype), 0)
    else:  # a scan (reverse-differentiable), not n_probes unrolled copies
        total, _ = jax.lax.scan(one, jnp.zeros((), dtype), jnp.arange(int(n_probes)))
    return total / n_probes / _tree_size(z)


def spectral_radius(fn: Callable[[Any, Any], Any], z: Any, args: Any, n_iters: int = 75,
                    key: Optional[jax.Array] = None) -> jax.Array:
    """Per-sample power iteration on J_f(z) (through J^T, the same spectrum).

    v <- v^T J / ||v^T J||, ``n_iters`` times from a Gaussian v; the estimate is
    ||v^T J|| / ||v|| at the last iterate, which converges to the largest |eigenvalue| when
    it is unique in modulus (the official code reports |Rayleigh quotient| instead; both
    agree then, the norm ratio also stays meaningful for negative or complex-pair dominant
    eigenvalues). No gradient flows through the result.

    Args:
      fn: ``fn(z, args) -> z``; samples must be independent (block-diagonal J).
      z: pytree of (B, ...) arrays.
      args: the arguments of ``fn``.
      n_iters: power iterations (static, >= 1).
      key: PRNG key of the start vector (default ``PRNGKey(0)``).

    Returns:
      (B,) estimates of the spectral radius of each sample's Jacobian block.
    """
    if int(n_iters) < 1:
        raise ValueError(f"spectral_radius: n_iters must be >= 1, got {n_iters}")
    batch_size_of(z, "z")
    z = jax.lax.stop_gradient(z)
    args = jax.lax.stop_gradient(args)
    key = jax.random.PRNGKey(0) if key is None else key
    fz, vjp_fn = jax.vjp(lambda zz: fn(zz, args), z)

    def normalise(v):
        n = jnp.sqrt(_tree_sum_sq_per_sample(v))
        inv = jnp.where(n > 0, 1.0 / n, 0.0)
        return jax.tree_util.tree_map(lambda x: x * jnp.reshape(inv, (-1,) + (1,) * (x.ndim - 1)).astype(x.dtype), v)

    def body(_, carry):
        v, _ = carry
        (w,) = vjp_fn(v)
        return normalise(w), jnp.sqrt(_tree_sum_sq_per_sample(w))

    v0 = normalise(_normal_like(key, fz))
    b = jax.tree_util.tree_leaves(z)[0].shape[0]
    _, rho = jax.lax.fori_loop(0, int(n_iters), body, (v0, jnp.zeros((b,), jax.tree_util.tree_leaves(fz)[0].dtype)))
    return rho
