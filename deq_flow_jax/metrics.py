"""Optical-flow error metrics: end-point error, n-pixel accuracy, KITTI F1-all.

All functions accept numpy or jax arrays in NHWC layout, flow in pixel units,
(u, v) = (x, y) on the last axis. Reductions are over valid pixels only (SPEC 5);
a batch is reduced as one pool of pixels (every valid pixel weighs the same).
"""
from __future__ import annotations

import jax.numpy as jnp

MAX_FLOW = 400.0


def epe_map(pred, gt):
    """Per-pixel end-point error.

    Args:
      pred: predicted flow (..., H, W, 2).
      gt: ground-truth flow, same shape.

    Returns:
      (..., H, W) Euclidean distance between `pred` and `gt` in pixels.
    """
    pred = jnp.asarray(pred, jnp.float32)
    gt = jnp.asarray(gt, jnp.float32)
    if pred.shape != gt.shape or pred.shape[-1] != 2:
        raise ValueError(
            f"epe_map: pred and gt must both be (..., H, W, 2); got {pred.shape} and {gt.shape}")
    return jnp.sqrt(jnp.sum((pred - gt) ** 2, axis=-1))


def valid_mask(gt, valid=None, max_flow=MAX_FLOW):
    """Pixels that count: `valid >= 0.5` and `|gt| < max_flow` (official MAX_FLOW = 400).

    Args:
      gt: ground-truth flow (..., H, W, 2).
      valid: (..., H, W) validity in {0, 1} (or None: every pixel valid).
      max_flow: exclude pixels whose ground-truth magnitude is at least this.

    Returns:
      (..., H, W) bool mask.
    """
    gt = jnp.asarray(gt, jnp.float32)
    mag = jnp.sqrt(jnp.sum(gt ** 2, axis=-1))
    mask = mag < max_flow
    if valid is not None:
        valid = jnp.asarray(valid)
        if valid.shape != mag.shape:
            raise ValueError(f"valid_mask: valid must be {mag.shape} (gt without its last axis); "
                             f"got {valid.shape}")
        mask = mask & (valid >= 0.5)
    return mask


def flow_metrics(pred, gt, valid=None, max_flow=MAX_FLOW):
    """EPE, 1/3/5-pixel accuracies and KITTI F1-all over the valid pixels.

    Args:
      pred: predicted flow (..., H, W, 2).
      gt: ground-truth flow (..., H, W, 2).
      valid: optional (..., H, W) validity mask in {0, 1}.
      max_flow: ground-truth magnitude cut-off (pixels at or above it are ignored).

    Returns:
      dict of float32 scalars: "epe" (mean EPE, pixels), "1px", "3px", "5px" (fraction of valid
      pixels with EPE below 1, 3, 5), "f1" (percent of valid pixels with EPE > 3 and
      EPE / |gt| > 0.05, KITTI's outlier rate). With no valid pixel every metric is NaN.
    """
    err = epe_map(pred, gt)
    mask = valid_mask(gt, valid, max_flow).astype(jnp.float32)
    mag = jnp.sqrt(jnp.sum(jnp.asarray(gt, jnp.float32) ** 2, axis=-1))
    n = jnp.sum(mask)
    n_safe = jnp.where(n > 0, n, jnp.nan)

    def frac(x):
        return jnp.sum(x.astype(jnp.float32) * mask) / n_safe

    outlier = (err > 3.0) & (err > 0.05 * mag)
    return {
        "epe": jnp.sum(err * mask) / n_safe,
        "1px": frac(err < 1.0),
        "3px": frac(err < 3.0),
        "5px": frac(err < 5.0),
        "f1": 100.0 * frac(outlier),
    }
