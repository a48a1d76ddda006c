"""All-pairs correlation pyramid and its windowed bilinear lookup (RAFT's CorrBlock), NHWC.

The pyramid is built once per image pair; the lookup runs inside f at every
solver step, so it is written as two small batched matmuls instead of a gather:
bilinear interpolation is separable and all taps of the (2r+1)^2 window share the
same fractional offset, so the window is `Ay @ corr @ Ax^T` with `Ax`, `Ay`
(2r+1, W)/(2r+1, H) interpolation matrices holding at most two non-zeros per row
(rows pointing outside the image are zero: zero padding, as grid_sample).
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


def _interp_matrix(pos: jax.Array, size: int, radius: int) -> jax.Array:
    """Linear interpolation weights of the 2r+1 taps around `pos` on a grid of `size`.

    Args:
      pos: (N,) sample centres in pixels.
      size: grid length.
      radius: r.

    Returns:
      (N, 2r+1, size): row k holds the weights sampling at pos + k - r; zero outside.
    """
    p0 = jnp.floor(pos)
    frac = (pos - p0)[:, None, None]
    offs = jnp.arange(-radius, radius + 1, dtype=pos.dtype)
    left = (p0[:, None] + offs)[:, :, None]                      # (N, 2r+1, 1)
    grid = jnp.arange(size, dtype=pos.dtype)[None, None, :]     # (1, 1, size)
    # Exact compare of small integers held in float32.
    return jnp.where(grid == left, 1.0 - frac, 0.0) + jnp.where(grid == left + 1.0, frac, 0.0)


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
    c = coords.reshape(b * h * w, 2).astype(jnp.float32)
    out = []
    for lvl, corr in enumerate(pyramid):
        hl, wl = corr.shape[1:]
        cl = c / (2.0 ** lvl)
        ax = _interp_matrix(cl[:, 0], wl, radius)                # (N, K, wl)  x taps
        ay = _interp_matrix(cl[:, 1], hl, radius)                # (N, K, hl)  y taps
        rows = jnp.einsum("nky,nyx->nkx", ay, corr, precision=jax.lax.Precision.HIGHEST)
        win = jnp.einsum("njx,nkx->njk", ax, rows, precision=jax.lax.Precision.HIGHEST)
        out.append(win.reshape(b, h, w, -1))                     # [dx, dy] -> dx*K + dy
    return jnp.concatenate(out, axis=-1)
