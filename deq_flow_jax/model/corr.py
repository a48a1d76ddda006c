"""All-pairs correlation pyramid and its windowed bilinear lookup (RAFT's CorrBlock), NHWC.

The pyramid is built once per image pair; the lookup runs inside f at every
solver step. All taps of the (2r+1)^2 window share the same fractional offset, so
each query gathers the (2r+2)^2 integer positions around its centre once (one
flat gather per level; positions outside the level read as zero: zero padding, as
grid_sample) and all levels are interpolated together, separably, first along y,
then along x. (An
earlier formulation, `Ay @ corr @ Ax^T` with dense (2r+1, H) / (2r+1, W)
interpolation matrices, multiplied the whole level by mostly zeros; its values agree
with these to rounding.)
Coordinates are pixel centres (align_corners=True), x first.

Channel order follows the official code: level-major, then the x offset, then the
y offset (channel = level*81 + (dx+r)*9 + (dy+r)).
"""
from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp

Pyramid = Tuple[jax.Array, ...]


def all_pairs_correlation(fmap1: jax.Array, fmap2: jax.Array) -> jax.Array:
    """Dot products of all feature pairs divided by sqrt(C).

    Args:
      fmap1, fmap2: (B, h, w, C) features at 1/8 resolution.

    Returns:
      (B, h, w, h, w) volume: [b, y1, x1, y2, x2].
    """
    b, h, w, c = fmap1.shape
    f1 = fmap1.reshape(b, h * w, c).astype(jnp.float32)
    f2 = fmap2.reshape(b, h * w, c).astype(jnp.float32)
    corr = jnp.einsum("bic,bjc->bij", f1, f2, precision=jax.lax.Precision.HIGHEST)
    return (corr / jnp.sqrt(jnp.float32(c))).reshape(b, h, w, h, w)


def _avg_pool2(x: jax.Array) -> jax.Array:
    """2x2 average pooling (floor) over the last two axes of (N, H, W)."""
    n, hh, ww = x.shape
    hh2, ww2 = hh // 2, ww // 2
    x = x[:, : hh2 * 2, : ww2 * 2].reshape(n, hh2, 2, ww2, 2)
    return x.mean(axis=(2, 4))


def build_pyramid(fmap1: jax.Array, fmap2: jax.Array, num_levels: int = 4) -> Pyramid:
    """Correlation pyramid: level 0 is the full volume, each next level pools frame 2 by 2.

    Args:
      fmap1, fmap2: (B, h, w, C).
      num_levels: pyramid levels.

    Returns:
      tuple of (B*h*w, h / 2^l, w / 2^l) float32 arrays (query pixels flattened row-major).
    """
    b, h, w, _ = fmap1.shape
    corr = all_pairs_correlation(fmap1, fmap2).reshape(b * h * w, h, w)
    levels = [corr]
    for _ in range(num_levels - 1):
        corr = _avg_pool2(corr)
        levels.append(corr)
    return tuple(levels)


def _level_taps(corr: jax.Array, c: jax.Array, radius: int):
    """The (2r+2)^2 integer positions around each centre in one level, and the centres' offsets.

    Args:
      corr: (N, hl, wl) one pyramid level (query pixels flattened).
      c: (N, 2) centres (x, y) in this level's pixels.
      radius: r.

    Returns:
      (taps (N, 2r+2 y, 2r+2 x) float32, zero outside the level; frac (N, 2) in [0, 1)).
    """
    n, hl, wl = corr.shape
    k = 2 * radius + 1
    p0 = jnp.floor(c)
    frac = c - p0
    frac = jnp.where(jnp.isfinite(frac), frac, 0.0)           # inf / NaN centres: all taps zero
    if hl == 0 or wl == 0:                 # a level pooled away (frames under 64 px): all outside
        return jnp.zeros((n, k + 1, k + 1), jnp.float32), frac
    # Clamped so that int32 cannot overflow; a clamped centre still has every tap outside.
    lo, hi = -(radius + 2), jnp.array([wl + radius, hl + radius], jnp.float32)
    base = jnp.where(jnp.isfinite(p0), jnp.clip(p0, lo, hi), lo).astype(jnp.int32)
    offs = jnp.arange(k + 1, dtype=jnp.int32) - radius
    ix, iy = base[:, 0:1] + offs, base[:, 1:2] + offs          # (N, 2r+2)
    inside = ((iy >= 0) & (iy < hl))[:, :, None] & ((ix >= 0) & (ix < wl))[:, None, :]
    flat = (jnp.arange(n, dtype=jnp.int32)[:, None, None] * (hl * wl)
            + jnp.clip(iy, 0, hl - 1)[:, :, None] * wl + jnp.clip(ix, 0, wl - 1)[:, None, :])
    return jnp.where(inside, corr.reshape(-1)[flat], 0.0), frac


def lookup(pyramid: Pyramid, coords: jax.Array, radius: int = 4) -> jax.Array:
    """Bilinear (2r+1)^2 window of every pyramid level around `coords / 2^level`.

    Args:
      pyramid: from `build_pyramid`.
      coords: (B, h, w, 2) pixel coordinates (x, y) in frame 2 at 1/8 resolution.
      radius: r (4: 9x9 windows).

    Returns:
      (B, h, w, levels * (2r+1)^2) float32, official channel order (see module doc).
    """
    b, h, w, _ = coords.shape
    k = 2 * radius + 1
    c = coords.reshape(b * h * w, 2).astype(jnp.float32)
    taps, frac = zip(*(_level_taps(corr, c / (2.0 ** lvl), radius)
                       for lvl, corr in enumerate(pyramid)))
    # All levels interpolated at once (one set of fused loops instead of one per level).
    g = jnp.stack(taps, axis=1)                                  # (N, L, 2r+2 y, 2r+2 x)
    frac = jnp.stack(frac, axis=1)                               # (N, L, 2)
    fx, fy = frac[..., 0, None, None], frac[..., 1, None, None]
    rows = (1.0 - fy) * g[:, :, :k, :] + fy * g[:, :, 1:, :]     # (N, L, 2r+1 y, 2r+2 x)
    win = (1.0 - fx) * rows[..., :k] + fx * rows[..., 1:]        # (N, L, 2r+1 y, 2r+1 x)
    return jnp.swapaxes(win, 2, 3).reshape(b, h, w, -1)          # level*K*K + dx*K + dy
