"""Forward interpolation of a flow field: the warm start for the next frame.

The flow f_t from frame t to t+1, seen from frame t+1, is roughly f_t carried
along itself: pixel x of frame t lands at x + f_t(x) in frame t+1 and brings
its motion there (constant-velocity assumption). Forward interpolation splats
every vector to its landing point, drops those that land outside the image,
and fills every grid position with the nearest landed vector (the scheme of
RAFT and DEQ-Flow's `forward_interpolate`, which calls scipy's nearest-neighbour
`griddata`; here a k-d tree query does the same on the CPU).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def forward_interpolate(flow) -> np.ndarray:
    """Carry a flow field forward along itself.

    Args:
        flow: (H, W, 2) or (B, H, W, 2) flow in pixels of that grid (for DEQ-Flow
            the 1/8-resolution flow, in 1/8-resolution pixels), (u, v) = (x, y).

    Returns:
        float32 array of the input's shape: at each pixel, the vector of the
        nearest landing point x + f(x) among those with 0 < x' < W and 0 < y' < H.
        Where no vector lands inside the image the result is zero.
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim == 4:
        return np.stack([forward_interpolate(f) for f in flow])
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (H, W, 2) or (B, H, W, 2); got {flow.shape}")
    h, w = flow.shape[:2]
    y0, x0 = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = flow[..., 0].ravel(), flow[..., 1].ravel()
    x1, y1 = x0.ravel() + dx, y0.ravel() + dy
    keep = (x1 > 0) & (x1 < w) & (y1 > 0) & (y1 < h) & np.isfinite(x1) & np.isfinite(y1)
    if not keep.any():
        return np.zeros_like(flow)
    points = np.stack([x1[keep], y1[keep]], axis=-1).astype(np.float64)
    values = np.stack([dx[keep], dy[keep]], axis=-1)
    grid = np.stack([x0.ravel(), y0.ravel()], axis=-1).astype(np.float64)
    _, nearest = cKDTree(points).query(grid, k=1)
    return values[nearest].reshape(h, w, 2).astype(np.float32)
