"""Weight normalisation of the update block, stored as (g, v) and folded once per forward.

Official DEQ-Flow applies torch-style weight norm (dim 0: one norm per output
channel) to every convolution of the update block and recomputes the weights once
per forward pass. Here a parameter dict `{"kernel": W}` (HWIO) becomes
`{"weight_g": g (O,), "weight_v": v (HWIO)}` with W = g * v / ||v|| (norm over H, W, I);
`fold_weight_norm` turns it back into plain kernels (differentiably) before the
equilibrium solve, so f itself always sees ordinary convolutions.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def _is_wn(node: Any) -> bool:
    return isinstance(node, dict) and "weight_g" in node and "weight_v" in node


def wn_kernel(g: jax.Array, v: jax.Array) -> jax.Array:
    """W = g * v / ||v||, norm over all axes but the last (output) one; v (..., O), g (O,)."""
    axes = tuple(range(v.ndim - 1))
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))
    return v * (g / norm)


def apply_weight_norm(params: Any) -> Any:
    """Re-parameterise every `kernel` in `params` as (weight_g, weight_v), same function."""
    if isinstance(params, dict) or hasattr(params, "items"):
        out = {}
        for k, val in params.items():
            out[k] = apply_weight_norm(val)
        if "kernel" in out and not isinstance(out["kernel"], dict):
            v = out.pop("kernel")
            axes = tuple(range(v.ndim - 1))
            out["weight_g"] = jnp.sqrt(jnp.sum(jnp.square(v), axis=axes))
            out["weight_v"] = v
        return out
    return params


def fold_weight_norm(params: Any) -> Any:
    """Replace every (weight_g, weight_v) pair by `kernel` = g v / ||v||; other leaves unchanged."""
    if isinstance(params, dict) or hasattr(params, "items"):
        out = {k: fold_weight_norm(v) for k, v in params.items() if k not in ("weight_g", "weight_v")}
        if _is_wn(params):
            out["kernel"] = wn_kernel(params["weight_g"], params["weight_v"])
        return out
    return params
