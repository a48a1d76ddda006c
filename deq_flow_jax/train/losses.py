"""The fixed-point correction loss (DEQ-Flow, SPEC 3), with the training batch's metrics, and an
optional extra weight on pixels near motion boundaries (this project's, off by default).

Layouts: flow (B, H, W, 2) NHWC in pixels, valid (B, H, W) in {0, 1}.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from jax import lax

from deq_flow_jax.metrics import MAX_FLOW, flow_magnitude, flow_metrics, valid_mask


def sequence_weights(n: int, gamma: float) -> jnp.ndarray:
    """Weights gamma^(n-i-1), i = 0..n-1: the last prediction weighs 1."""
    return jnp.asarray([gamma ** (n - i - 1) for i in range(n)], jnp.float32)


def motion_boundaries(flow_gt, *, threshold: float = 1.0, radius: int = 2) -> jnp.ndarray:
    """Pixels within `radius` of a discontinuity of the ground-truth flow.

    A pixel is on a discontinuity when its flow differs from its right or lower neighbour's by
    more than `threshold` px (Euclidean); both pixels of such a pair are marked, then the marks
    are dilated by a (2 radius + 1)^2 square. A smooth field (a slanted plane, a zoom) whose
    flow changes by less than `threshold` per pixel has none.

    Args:
      flow_gt: (B, H, W, 2) ground truth in px.
      threshold: jump in px between neighbours that counts as a discontinuity (> 0).
      radius: dilation in pixels (>= 0).

    Returns:
      (B, H, W) float32 in {0, 1}.
    """
    f = flow_gt.astype(jnp.float32)
    jump_x = flow_magnitude(f[:, :, 1:] - f[:, :, :-1]) > threshold
    jump_y = flow_magnitude(f[:, 1:] - f[:, :-1]) > threshold
    # Mark both pixels of each jump: pad the (W-1)- and (H-1)-long jump maps on either side.
    edge = (jnp.pad(jump_x, ((0, 0), (0, 0), (1, 0))) | jnp.pad(jump_x, ((0, 0), (0, 0), (0, 1)))
            | jnp.pad(jump_y, ((0, 0), (1, 0), (0, 0))) | jnp.pad(jump_y, ((0, 0), (0, 1), (0, 0))))
    edge = edge.astype(jnp.float32)
    if radius > 0:
        k = 2 * radius + 1
        edge = lax.reduce_window(edge, 0.0, lax.max, (1, k, k), (1, 1, 1), "SAME")
    return edge


def boundary_weights(flow_gt, valid_pixels, weight: float, *, threshold: float = 1.0,
                     radius: int = 2) -> jnp.ndarray:
    """Per-pixel loss weights 1 + weight * boundary, scaled to mean 1 over the valid pixels.

    The scaling keeps the loss's size (a batch without discontinuities gets weight 1
    everywhere), so `weight` moves the loss's emphasis, not its magnitude. Without a valid pixel
    the weights are left unscaled (never a division by zero).

    Args:
      flow_gt: (B, H, W, 2); valid_pixels: (B, H, W) {0, 1} float (the pixels that count).
      weight: extra weight of boundary pixels (>= 0; 0 gives all ones).

    Returns:
      (B, H, W) float32.
    """
    w = 1.0 + weight * motion_boundaries(flow_gt, threshold=threshold, radius=radius)
    n = jnp.sum(valid_pixels)
    mean = jnp.where(n > 0, jnp.sum(w * valid_pixels) / jnp.maximum(n, 1.0), 1.0)
    return w / mean


def fixed_point_correction_loss(flow_preds: Sequence[jnp.ndarray], flow_gt, valid, *,
                                gamma: float = 0.8, max_flow: float = MAX_FLOW,
                                boundary_weight: float = 0.0, boundary_threshold: float = 1.0,
                                boundary_radius: int = 2, margin: float = 0.0):
    """Gamma-weighted L1 over the decoded solver states (official `fixed_point_correction`).

    loss = sum_i gamma^(n-i-1) * mean_{b,h,w,c}(valid * |flow_i - gt|), where valid excludes
    pixels flagged invalid and pixels with |gt| >= max_flow. The mean runs over ALL pixels
    and both channels (invalid ones contribute 0), exactly as the official code does.

    Args:
      flow_preds: non-empty sequence of (B, H, W, 2) predictions in supervision order
        (captured states first, final state last).
      flow_gt: (B, H, W, 2) ground truth.
      valid: (B, H, W) validity in {0, 1}.
      gamma: exponential weight (0.8 Chairs/Things, 0.9 Sintel/KITTI).
      max_flow: ground-truth magnitude cut-off.
      boundary_weight: > 0 weighs pixels near motion boundaries (`motion_boundaries` with
        `boundary_threshold` px and `boundary_radius`) 1 + boundary_weight times the others,
        at an unchanged mean weight (`boundary_weights`; not in the paper: this project's
        option). 0 (default) is the official loss exactly.
      margin: > 0 makes each flow component's error cost max(|flow_i - gt| - margin, 0)
        instead of |flow_i - gt| (px; not in the paper: this project's option), so that errors
        within `margin`, which a refinement after the model removes anyway, give no gradient
        and the loss's gradient comes from the larger ones. 0 (default) is the official loss.

    Returns:
      (loss scalar float32, metrics dict of the last prediction over the valid pixels of the
      batch: `deq_flow_jax.metrics.flow_metrics` ("epe" px; "1px", "3px", "5px", "fl_all"
      percent), 0 instead of NaN when no pixel is valid).
    """
    if len(flow_preds) == 0:
        raise ValueError("fixed_point_correction_loss: flow_preds is empty")
    if boundary_weight < 0:
        raise ValueError(f"fixed_point_correction_loss: boundary_weight must be >= 0, got {boundary_weight}")
    if not margin >= 0:
        raise ValueError(f"fixed_point_correction_loss: margin must be >= 0, got {margin}")
    mask = valid_mask(flow_gt, valid, max_flow).astype(jnp.float32)
    if boundary_weight > 0:
        mask = mask * boundary_weights(flow_gt, mask, boundary_weight, threshold=boundary_threshold,
                                       radius=boundary_radius)
    mask = mask[..., None]
    weights = sequence_weights(len(flow_preds), gamma)
    loss = jnp.float32(0.0)
    for i, pred in enumerate(flow_preds):
        if pred.shape != flow_gt.shape:
            raise ValueError(f"fixed_point_correction_loss: prediction {i} has shape {pred.shape}, "
                             f"ground truth {flow_gt.shape}")
        err = jnp.abs(pred.astype(jnp.float32) - flow_gt)
        if margin > 0:
            err = jnp.maximum(err - margin, 0.0)
        loss = loss + weights[i] * jnp.mean(mask * err)
    return loss, flow_metrics(flow_preds[-1], flow_gt, valid, max_flow, empty=0.0)
