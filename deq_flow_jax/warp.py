"""Backward warping of an image along a flow (numpy + OpenCV): one helper for the data
generators' exactness checks and the refinement's matching cost (evaluate/refine.py)."""
from __future__ import annotations

import numpy as np


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Samples `image` (H, W, C) or (H, W) at x + flow(x) (bilinear, replicated border) -> float32.

    With the (H, W, 2) flow of frame 1 -> frame 2 (x, y), warping frame 2 reproduces frame 1
    on non-occluded pixels.
    """
    import cv2

    h, w = flow.shape[:2]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    map_x = xx + flow[..., 0].astype(np.float32)
    map_y = yy + flow[..., 1].astype(np.float32)
    return cv2.remap(np.asarray(image).astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)
