"""Classical flow baselines with the estimator interface: zero flow, OpenCV's DIS (preset
medium) and OpenCV's Farneback.

The same methods and settings as the baselines of `benchmarks/pretrained.py`, so that
`deq-flow eval --baseline NAME` scores them on any protocol (Sintel, KITTI, Middlebury, a
list of your own pairs) next to a model:

- `zero`: zero flow;
- `dis-medium`: `cv2.DISOpticalFlow`, preset medium (Kroeger et al. 2016);
- `farneback`: `cv2.calcOpticalFlowFarneback` with `FARNEBACK_ARGS` (pyramid scale 0.5, 3
  levels, window 15, 3 iterations, polynomial 5 px, sigma 1.2).

Both OpenCV methods see the frames as grey uint8 (`refine.grey_frame`). Layouts: frames
(H, W, 3) RGB or (H, W) grey, 0..255; flow (H, W, 2) float32 (u, v) in pixels.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from deq_flow_jax.evaluate.estimator import Estimate
from deq_flow_jax.evaluate.refine import dis_flow, grey_frame

BASELINES = ("zero", "dis-medium", "farneback")

# cv2.calcOpticalFlowFarneback's arguments after the frames: pyr_scale, levels, winsize,
# iterations, poly_n, poly_sigma, flags (OpenCV's sample settings)
FARNEBACK_ARGS = (0.5, 3, 15, 3, 5, 1.2, 0)


def check_baseline(name: str) -> str:
    """`name` if it is one of BASELINES; else ValueError listing them."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    return name


def baseline_flow(name: str, image1, image2) -> np.ndarray:
    """(H, W, 2) float32 flow of a classical baseline (BASELINES) from image1 to image2.

    image1, image2: (H, W, 3) RGB or (H, W) grey frames of one shape, 0..255 (grey frames
    in uint8 are used as they are, so a caller can time the method alone)."""
    check_baseline(name)
    g1, g2 = grey_frame(image1), grey_frame(image2)
    if g1.shape != g2.shape:
        raise ValueError(f"baseline {name}: frames differ in size: {g1.shape} vs {g2.shape}")
    if name == "zero":
        return np.zeros(g1.shape + (2,), np.float32)
    if name == "dis-medium":
        return dis_flow(g1, g2, "medium")
    import cv2
    return cv2.calcOpticalFlowFarneback(g1, g2, None, *FARNEBACK_ARGS).astype(np.float32)


class BaselineEstimator:
    """A classical baseline behind the estimator interface of `FlowEstimator`
    (callable(image1, image2, *, flow_init=None, cache=None) -> Estimate), for
    `protocols.evaluate_source` and `deq-flow eval --baseline`.

    There is no solver: `has_solver` is False, the Estimate's solver fields are zeros
    (steps, nstep), NaN (residuals) and empty arrays (flow_lowres, hidden: (B, 0, 0, 2) and
    (B, 0, 0, 0)), `start` holds the baseline's name; `flow_init` and `cache` must be None
    (nothing to start from).

    Args:
        name: one of BASELINES.
    """

    has_solver = False

    def __init__(self, name: str):
        self.name = check_baseline(name)

    def __call__(self, image1, image2, *, flow_init: Optional[np.ndarray] = None,
                 cache: Optional[tuple] = None) -> Estimate:
        """Flow from image1 to image2: (H, W, 3) or (B, H, W, 3), 0..255."""
        if flow_init is not None or cache is not None:
            raise ValueError(f"baseline {self.name}: has no solver to start from a previous "
                             "flow (use reuse mode 'none')")
        im1, im2 = np.asarray(image1), np.asarray(image2)
        if im1.ndim == 3:
            im1, im2 = im1[None], im2[None]
        if im1.ndim != 4 or im1.shape != im2.shape:
            raise ValueError(f"baseline {self.name}: frames must be two (H, W, 3) or (B, H, W, 3) "
                             f"arrays of one shape; got {im1.shape} and {im2.shape}")
        t0 = time.perf_counter()
        flow = np.stack([baseline_flow(self.name, a, b) for a, b in zip(im1, im2)])
        seconds = time.perf_counter() - t0
        b = len(flow)
        zeros = np.zeros(b, np.int32)
        nan = np.full(b, np.nan, np.float32)
        return Estimate(flow, np.zeros((b, 0, 0, 2), np.float32), np.zeros((b, 0, 0, 0), np.float32),
                        zeros, nan, nan.copy(), seconds, zeros.copy(), np.zeros(b, bool),
                        np.array([self.name] * b))
