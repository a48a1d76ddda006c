"""Optical-flow error metrics: the one definition used by training, evaluation and benchmarks.

Definitions (RAFT's, SPEC 5), over a set of pixels S:

* ``epe``: mean end-point error ||pred - gt||_2 over S, in pixels;
* ``1px``, ``3px``, ``5px``: percentage (0..100) of S with end-point error below 1, 3, 5 px;
* ``fl_all``: KITTI's Fl-all, percentage of S with EPE > 3 px and EPE / |gt| > 5 %.

Which pixels S holds, and whether images are pooled or averaged, is a protocol's choice
(`deq_flow_jax.evaluate.protocols`); this module only counts. Counting and summarising are
split (:func:`error_sums`, :func:`summarize`) so that sums over many images can be pooled
exactly. All functions take numpy or jax arrays in NHWC layout, flow in pixels, (u, v) =
(x, y) on the last axis, compute in float32 and work inside ``jit``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

MAX_FLOW = 400.0
THRESHOLDS = (1.0, 3.0, 5.0)
METRIC_NAMES = ("epe", "1px", "3px", "5px", "fl_all")


def epe_map(pred, gt):
    """Per-pixel end-point error.

    Args:
      pred: predicted flow (..., H, W, 2).
      gt: ground-truth flow, same shape.

    Returns:
      (..., H, W) float32 Euclidean distance between `pred` and `gt` in pixels.
    """
    pred = jnp.asarray(pred, jnp.float32)
    gt = jnp.asarray(gt, jnp.float32)
    if pred.shape != gt.shape or pred.shape[-1] != 2:
        raise ValueError(
            f"epe_map: pred and gt must both be (..., H, W, 2); got {pred.shape} and {gt.shape}")
    return jnp.sqrt(jnp.sum((pred - gt) ** 2, axis=-1))


def flow_magnitude(flow):
    """(..., H, W) float32 |flow| of a (..., H, W, 2) flow."""
    flow = jnp.asarray(flow, jnp.float32)
    return jnp.sqrt(jnp.sum(flow ** 2, axis=-1))


def valid_mask(gt, valid=None, max_flow=MAX_FLOW):
    """Pixels that count: `valid >= 0.5` and `|gt| < max_flow` (official MAX_FLOW = 400).

    Args:
      gt: ground-truth flow (..., H, W, 2).
      valid: (..., H, W) validity in {0, 1} (or None: every pixel valid).
      max_flow: exclude pixels whose ground-truth magnitude is at least this
        (``float("inf")``: no cut-off).

    Returns:
      (..., H, W) bool mask.
    """
    mag = flow_magnitude(gt)
    mask = mag < max_flow
    if valid is not None:
        valid = jnp.asarray(valid)
        if valid.shape != mag.shape:
            raise ValueError(f"valid_mask: valid must be {mag.shape} (gt without its last axis); "
                             f"got {valid.shape}")
        mask = mask & (valid >= 0.5)
    return mask


def outlier_map(err, gt_magnitude):
    """KITTI outliers: (..., H, W) bool, EPE > 3 px and EPE > 5 % of |gt|."""
    return (err > 3.0) & (err > 0.05 * gt_magnitude)


class ErrorSums(NamedTuple):
    """Counts over a set of pixels; add them up (:meth:`plus`) to pool images.

    Attributes:
      n: number of pixels.
      epe: sum of their end-point errors.
      below: (len(THRESHOLDS),) number with EPE below each threshold.
      outliers: number of KITTI outliers (:func:`outlier_map`).
    """

    n: object
    epe: object
    below: object
    outliers: object

    def plus(self, other: "ErrorSums") -> "ErrorSums":
        return ErrorSums(self.n + other.n, self.epe + other.epe, self.below + other.below,
                         self.outliers + other.outliers)


def error_sums(err, gt_magnitude, mask) -> ErrorSums:
    """Counts over the pixels where `mask` is true (all leading axes pooled).

    Args:
      err: (..., H, W) end-point errors (:func:`epe_map`).
      gt_magnitude: (..., H, W) |gt| (:func:`flow_magnitude`).
      mask: (..., H, W) bool or {0, 1}.

    Returns:
      ErrorSums of jax scalars (n and counts int32, epe float32; below has shape (3,)).
    """
    m = jnp.asarray(mask).astype(bool)
    err = jnp.asarray(err, jnp.float32)
    count = lambda x: jnp.sum(x & m, dtype=jnp.int32)  # noqa: E731
    return ErrorSums(
        n=jnp.sum(m, dtype=jnp.int32),
        epe=jnp.sum(jnp.where(m, err, 0.0)),
        below=jnp.stack([count(err < t) for t in THRESHOLDS]),
        outliers=count(outlier_map(err, gt_magnitude)))


def summarize(sums: ErrorSums, empty=float("nan")) -> dict:
    """The metrics of :data:`METRIC_NAMES` from pooled counts.

    Args:
      sums: ErrorSums (jax scalars inside ``jit``, or host numbers).
      empty: the value of every metric when ``sums.n == 0`` (NaN; training uses 0).

    Returns:
      {"epe": px, "1px", "3px", "5px", "fl_all": percent 0..100}.
    """
    n = jnp.asarray(sums.n, jnp.float32)
    ok = n > 0
    denom = jnp.where(ok, n, 1.0)
    below = jnp.asarray(sums.below, jnp.float32)

    def ratio(x, scale=1.0):
        return jnp.where(ok, scale * jnp.asarray(x, jnp.float32) / denom, empty)

    out = {"epe": ratio(sums.epe)}
    for i, t in enumerate(THRESHOLDS):
        out[f"{int(t)}px"] = ratio(below[i], 100.0)
    out["fl_all"] = ratio(sums.outliers, 100.0)
    return out


def flow_metrics(pred, gt, valid=None, max_flow=MAX_FLOW, empty=float("nan")):
    """:data:`METRIC_NAMES` over the valid pixels of a batch, pooled (each pixel weighs the same).

    Args:
      pred: predicted flow (..., H, W, 2).
      gt: ground-truth flow (..., H, W, 2).
      valid: optional (..., H, W) validity mask in {0, 1}.
      max_flow: ground-truth magnitude cut-off (pixels at or above it are ignored).
      empty: value of every metric when no pixel is valid.

    Returns:
      dict of float32 scalars: "epe" (pixels), "1px", "3px", "5px", "fl_all" (percent).
    """
    err = epe_map(pred, gt)
    mask = valid_mask(gt, valid, max_flow)
    return summarize(error_sums(err, flow_magnitude(gt), mask), empty)
