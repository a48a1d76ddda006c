"""DEQ-GMA: global motion aggregation (single head, no positional embedding), NHWC.

`Attention` turns the context features into a (B, N, N) softmax attention over all
N = h*w positions once per image pair; `Aggregate` (inside f) mixes motion features
with it: out = m + gamma * attn @ (m W_v), gamma a learned scalar initialised to 0.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from deq_flow_jax.model.layers import Conv


class Attention(nn.Module):
    """(B, h, w, dim) context features -> (B, h*w, h*w) attention (rows sum to 1).

    Attributes:
      dim_head: query/key channels (official: cdim, one head).
    """

    dim_head: int

    @nn.compact
    def __call__(self, fmap):
        b, h, w, c = fmap.shape
        qk = Conv(2 * self.dim_head, (1, 1), use_bias=False, in_features=c, name="to_qk")(fmap)
        q, k = jnp.split(qk.reshape(b, h * w, 2 * self.dim_head), 2, axis=-1)
        q = q * (self.dim_head ** -0.5)
        sim = jnp.einsum("bid,bjd->bij", q, k, precision=jax.lax.Precision.HIGHEST)
        return jax.nn.softmax(sim.astype(jnp.float32), axis=-1)   # float32 softmax under bf16


class Aggregate(nn.Module):
    """Attention-weighted sum of projected motion features, added back with a gate gamma.

    Attributes:
      dim: motion feature channels (cat_dim); value dim equals it (no output projection).

    attn (B, N, N), fmap (B, h, w, dim) -> (B, h, w, dim).
    """

    dim: int

    @nn.compact
    def __call__(self, attn, fmap):
        b, h, w, c = fmap.shape
        v = Conv(self.dim, (1, 1), use_bias=False, in_features=c, name="to_v")(fmap)
        out = jnp.einsum("bij,bjd->bid", attn, v.reshape(b, h * w, self.dim),
                         precision=jax.lax.Precision.HIGHEST).reshape(b, h, w, self.dim)
        gamma = self.param("gamma", nn.initializers.zeros, (1,), jnp.float32)
        return fmap + gamma * out
