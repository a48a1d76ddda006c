"""The fixed-point correction loss (DEQ-Flow, SPEC 3), with the training batch's metrics.

Layouts: flow (B, H, W, 2) NHWC in pixels, valid (B, H, W) in {0, 1}.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from deq_flow_jax.metrics import MAX_FLOW, flow_metrics, valid_mask


def sequence_weights(n: int, gamma: float) -> jnp.ndarray:
    """Weights gamma^(n-i-1), i = 0..n-1: the last prediction weighs 1."""
    return jnp.asarray([gamma ** (n - i - 1) for i in range(n)], jnp.float32)


def fixed_point_correction_loss(flow_preds: Sequence[jnp.ndarray], flow_gt, valid, *,
                                gamma: float = 0.8, max_flow: float = MAX_FLOW):
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

    Returns:
      (loss scalar float32, metrics dict of the last prediction over the valid pixels of the
      batch: `deq_flow_jax.metrics.flow_metrics` ("epe" px; "1px", "3px", "5px", "fl_all"
      percent), 0 instead of NaN when no pixel is valid).
    """
    if len(flow_preds) == 0:
        raise ValueError("fixed_point_correction_loss: flow_preds is empty")
    mask = valid_mask(flow_gt, valid, max_flow).astype(jnp.float32)[..., None]
    weights = sequence_weights(len(flow_preds), gamma)
    loss = jnp.float32(0.0)
    for i, pred in enumerate(flow_preds):
        if pred.shape != flow_gt.shape:
            raise ValueError(f"fixed_point_correction_loss: prediction {i} has shape {pred.shape}, "
                             f"ground truth {flow_gt.shape}")
        loss = loss + weights[i] * jnp.mean(mask * jnp.abs(pred.astype(jnp.float32) - flow_gt))
    return loss, flow_metrics(flow_preds[-1], flow_gt, valid, max_flow, empty=0.0)
