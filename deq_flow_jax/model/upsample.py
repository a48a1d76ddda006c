"""Convex upsampling of flow by 8 (RAFT), NHWC.

The mask head predicts, for each fine pixel (a, b) of each coarse cell, softmax
weights over the 3x3 coarse neighbourhood; fine flow = sum_k w_k * 8 * flow_k.
Mask channel layout follows the official code: channel = k*64 + a*8 + b, k the
row-major 3x3 tap, a the sub-row, b the sub-column.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from deq_flow_jax.model.layers import Conv


class MaskHead(nn.Module):
    """hidden (B,h,w,hdim) -> 0.25 * mask logits (B,h,w,576). Names: mask_0, mask_2 (official mask.0/2)."""

    @nn.compact
    def __call__(self, net):
        y = nn.relu(Conv(256, (3, 3), in_features=net.shape[-1], name="mask_0")(net))
        return 0.25 * Conv(64 * 9, (1, 1), in_features=256, name="mask_2")(y)


def convex_upsample(flow: jax.Array, mask: jax.Array) -> jax.Array:
    """Upsample (B, h, w, 2) flow to (B, 8h, 8w, 2) pixels with mask logits (B, h, w, 576)."""
    b, h, w, _ = flow.shape
    m = jax.nn.softmax(mask.reshape(b, h, w, 9, 8, 8), axis=3)
    f = jnp.pad(8.0 * flow, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = jnp.stack([f[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=3)
    up = jnp.einsum("bhwkac,bhwkd->bhawcd", m, taps, precision=jax.lax.Precision.HIGHEST)
    return up.reshape(b, 8 * h, 8 * w, 2)


def upsample_bilinear8(flow: jax.Array) -> jax.Array:
    """8 * bilinear (align_corners=True) upsampling, (B,h,w,2) -> (B,8h,8w,2); a fallback decoder."""
    b, h, w, _ = flow.shape

    def axis_matrix(n):
        pos = jnp.linspace(0.0, n - 1.0, 8 * n) if n > 1 else jnp.zeros(8 * n)
        p0 = jnp.clip(jnp.floor(pos), 0, max(n - 2, 0))
        fr = pos - p0
        grid = jnp.arange(n)[None]
        return (jnp.where(grid == p0[:, None], 1 - fr[:, None], 0.0)
                + jnp.where(grid == p0[:, None] + 1, fr[:, None], 0.0))
    ay, ax = axis_matrix(h), axis_matrix(w)
    return 8.0 * jnp.einsum("Yh,bhwc,Xw->bYXc", ay, flow, ax)
