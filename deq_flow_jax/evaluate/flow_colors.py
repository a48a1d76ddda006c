"""Flow visualisation: the Middlebury colour wheel, error maps and side-by-side panels.

All functions take and return numpy arrays (jax arrays are converted). Flow is
(..., H, W, 2) float in pixel units, (u, v) = (x, y) with y pointing down; images
are (H, W, 3) uint8 RGB.

The colour wheel is the one of Baker et al., "A Database and Evaluation
Methodology for Optical Flow" (ICCV 2007): 55 hues in six ramps
(red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13,
magenta-red 6). Hue encodes direction (right = red, down = yellow, left = cyan,
up = violet), saturation encodes magnitude relative to `max_flow`; vectors
longer than `max_flow` are darkened to 75 %.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

_RAMPS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def make_colorwheel() -> np.ndarray:
    """The Middlebury colour wheel.

    Returns:
        (55, 3) float64 array of RGB values in 0..255; row k is the colour of
        the angle k / 55 of a full turn, starting at flow pointing right.
    """
    up = lambda n: np.floor(255.0 * np.arange(n) / n)  # noqa: E731  0 -> 255 ramp
    down = lambda n: 255.0 - up(n)  # noqa: E731
    full = lambda n: np.full(n, 255.0)  # noqa: E731
    zero = lambda n: np.zeros(n)  # noqa: E731
    columns = {  # (R, G, B) per ramp
        "RY": lambda n: (full(n), up(n), zero(n)),
        "YG": lambda n: (down(n), full(n), zero(n)),
        "GC": lambda n: (zero(n), full(n), up(n)),
        "CB": lambda n: (zero(n), down(n), full(n)),
        "BM": lambda n: (up(n), zero(n), full(n)),
        "MR": lambda n: (full(n), zero(n), down(n)),
    }
    parts = [np.stack(columns[name](n), axis=-1) for name, n in _RAMPS]
    return np.concatenate(parts, axis=0)


def _check_flow(flow, name: str = "flow") -> np.ndarray:
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., H, W, 2); got {flow.shape}")
    return flow


def uv_to_color(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour-code normalised flow components (|(u, v)| <= 1 is in range).

    Args:
        u, v: arrays of the same shape, flow divided by the normalising radius.

    Returns:
        uint8 array of shape u.shape + (3,), RGB.
    """
    wheel = make_colorwheel() / 255.0
    ncols = wheel.shape[0]
    rad = np.sqrt(u * u + v * v)
    angle = np.arctan2(-v, -u) / np.pi          # in [-1, 1]; -1 = pointing right
    fk = (angle + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int32)
    k1 = np.where(k0 + 1 == ncols, 0, k0 + 1)
    frac = (fk - k0)[..., None]
    col = (1.0 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (rad <= 1.0)[..., None]
    col = np.where(inside, 1.0 - rad[..., None] * (1.0 - col), col * 0.75)
    return np.floor(255.0 * col).astype(np.uint8)


def flow_to_color(flow, max_flow: float | None = None) -> np.ndarray:
    """Middlebury colour coding of a flow field.

    Args:
        flow: (..., H, W, 2) flow in pixels, (u, v) = (x, y).
        max_flow: magnitude mapped to full saturation. None: each image's own
            largest magnitude (the usual choice for display).

    Returns:
        (..., H, W, 3) uint8 RGB. Zero flow is white.
    """
    flow = _check_flow(flow)
    if max_flow is not None and not max_flow > 0:
        raise ValueError(f"max_flow must be positive; got {max_flow}")
    u, v = flow[..., 0], flow[..., 1]
    if max_flow is None:
        rad = np.sqrt(u * u + v * v)
        scale = rad.max(axis=(-2, -1), keepdims=True) + 1e-5
    else:
        scale = float(max_flow)
    u, v = u / scale, v / scale
    u = np.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0)
    v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    return uv_to_color(u, v)


def error_map(pred, gt, valid=None, max_error: float | None = None,
              colormap: str = "magma") -> np.ndarray:
    """Colour-coded end-point error.

    Args:
        pred, gt: (H, W, 2) flows in pixels.
        valid: optional (H, W) mask; invalid pixels are drawn black.
        max_error: EPE mapped to the top of the colour map. None: the largest
            valid EPE (at least 1e-6).
        colormap: a matplotlib colour map name.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    pred = _check_flow(pred, "pred")
    gt = _check_flow(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    epe = np.sqrt(np.sum((pred - gt) ** 2, axis=-1))
    mask = np.ones(epe.shape, bool) if valid is None else np.asarray(valid) >= 0.5
    epe = np.where(mask & np.isfinite(epe), epe, 0.0)
    if max_error is None:
        max_error = max(float(epe.max()) if epe.size else 0.0, 1e-6)
    import matplotlib  # deferred: importing matplotlib costs ~0.3 s

    cmap = matplotlib.colormaps[colormap]
    rgb = cmap(np.clip(epe / max_error, 0.0, 1.0))[..., :3]
    rgb = np.floor(255.0 * rgb).astype(np.uint8)
    return np.where(mask[..., None], rgb, np.uint8(0))


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(image.copy())
    scale = max(0.35, min(image.shape[:2]) / 400.0)
    thickness = max(1, int(round(scale * 2)))
    org = (4, 4 + int(14 * scale))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                 gap: int = 4) -> np.ndarray:
    """Concatenate (H, W, 3) uint8 images left to right with a white gap.

    Args:
        images: images of equal height.
        labels: optional caption drawn in the top-left corner of each image.
        gap: width in pixels of the separator.

    Returns:
        (H, sum(W) + gap * (n - 1), 3) uint8.
    """
    if not images:
        raise ValueError("side_by_side needs at least one image")
    heights = {im.shape[0] for im in images}
    if len(heights) != 1:
        raise ValueError(f"images must share one height; got {sorted(heights)}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    parts = []
    for i, im in enumerate(images):
        im = np.asarray(im)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=-1)
        im = im.astype(np.uint8)
        if labels is not None and labels[i]:
            im = _label(im, labels[i])
        if i:
            parts.append(np.full((im.shape[0], gap, 3), 255, np.uint8))
        parts.append(im)
    return np.concatenate(parts, axis=1)


def flow_panel(image1, flow, gt=None, valid=None, max_flow: float | None = None,
               labels: bool = True) -> np.ndarray:
    """Frame, predicted flow, and (when given) ground truth and error map side by side.

    Prediction and ground truth share one colour scale: `max_flow`, or the
    ground truth's largest valid magnitude (the prediction's when no gt).

    Args:
        image1: (H, W, 3) uint8 first frame.
        flow: (H, W, 2) predicted flow.
        gt: optional (H, W, 2) ground-truth flow.
        valid: optional (H, W) validity of `gt`.
        max_flow: colour-scale magnitude; None picks it as above.
        labels: draw captions.

    Returns:
        (H, W * n + gaps, 3) uint8 with n = 2 (no gt) or 4.
    """
    flow = _check_flow(flow)
    image1 = np.asarray(image1)
    if image1.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image1.shape[:2]} and flow {flow.shape[:2]} differ in size")
    if max_flow is None:
        ref = flow if gt is None else np.asarray(gt, np.float64)
        mag = np.sqrt(np.sum(ref ** 2, axis=-1))
        if gt is not None and valid is not None:
            mag = np.where(np.asarray(valid) >= 0.5, mag, 0.0)
        mag = np.where(np.isfinite(mag), mag, 0.0)
        max_flow = max(float(mag.max()), 1e-5)
    images = [image1.astype(np.uint8), flow_to_color(flow, max_flow)]
    names = ["frame", "prediction"]
    if gt is not None:
        gt_show = np.asarray(gt, np.float64)
        if valid is not None:
            gt_show = np.where((np.asarray(valid) >= 0.5)[..., None], gt_show, 0.0)
        images += [flow_to_color(gt_show, max_flow), error_map(flow, gt, valid)]
        names += ["ground truth", "end-point error"]
    return side_by_side(images, names if labels else None)
