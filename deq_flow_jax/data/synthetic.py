"""Procedural optical-flow scenes with exact ground truth (FlyingChairs-like).

A scene is a stack of layers: a textured background and several textured foreground
objects (random polygons / ellipses). Layer `l` is painted in frame-0 image
coordinates and moves by an affine map A_l(t) (frame-0 coordinates -> frame-t
coordinates), a smooth function of time (velocity, acceleration, rotation, scale).
Frame t shows, at each pixel, the top-most layer covering it; the flow from frame t
to frame t+1 at a pixel x of layer l is A_l(t+1) A_l(t)^-1 x - x, exactly. Frame t+1
is also relit (a global gain and bias), and pixels of frame t that are hidden in
frame t+1 (by a layer in front or by leaving the image) are marked as occluded.

All arrays are NHWC-style numpy: images (H, W, 3) uint8 RGB, flow (H, W, 2) float32
(u, v) in pixels with pixel centres at integer coordinates (OpenCV's convention).
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from deq_flow_jax.warp import warp_backward  # noqa: F401  (also deq_flow_jax.data.warp_backward)


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Parameters of the generator. Motions are given for a 128-px-wide image and scaled
    with the width, so flow magnitudes grow with the resolution.

    Attributes:
      height, width: image size in pixels.
      num_frames: frames per scene (2 = an image pair; more = a video sequence).
      min_objects, max_objects: number of foreground objects (inclusive range).
      max_bg_shift, max_obj_shift: largest per-frame translation (px at width 128).
      max_bg_rot, max_obj_rot: largest per-frame rotation (degrees).
      max_bg_zoom, max_obj_zoom: largest per-frame relative scale change.
      accel: per-frame change of the velocities, relative to their range (video only).
      lighting: largest relative gain change of frame t+1 (bias is 25 * lighting grey levels).
      noise_sigma: std of Gaussian pixel noise added to every frame (grey levels).
    """
    height: int = 96
    width: int = 128
    num_frames: int = 2
    min_objects: int = 2
    max_objects: int = 5
    max_bg_shift: float = 6.0
    max_obj_shift: float = 14.0
    max_bg_rot: float = 2.0
    max_obj_rot: float = 8.0
    max_bg_zoom: float = 0.04
    max_obj_zoom: float = 0.08
    accel: float = 0.15
    lighting: float = 0.06
    noise_sigma: float = 0.0

    def __post_init__(self):
        if self.height < 16 or self.width < 16:
            raise ValueError(f"synthetic images must be at least 16x16, got {self.height}x{self.width}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colourful texture with structure at several scales: (h, w, 3) float32 0..255."""
    base = rng.uniform(50, 205, size=3)
    tex = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((32, 45.0), (10, 30.0), (4, 14.0)):  # multi-octave smooth noise
        gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
        grey = rng.normal(size=(gh, gw, 1))
        noise = (0.7 * grey + 0.5 * rng.normal(size=(gh, gw, 3))).astype(np.float32)
        tex += amp * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    # Sharp structure: random strokes, discs and stripes, slightly blurred.
    strokes = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(4, 12))):
        colour = (rng.uniform(-70, 70) + rng.uniform(-30, 30, size=3)).tolist()
        kind = rng.integers(3)
        p = (int(rng.integers(w)), int(rng.integers(h)))
        if kind == 0:
            q = (int(rng.integers(w)), int(rng.integers(h)))
            cv2.line(strokes, p, q, colour, int(rng.integers(1, 4)))
        elif kind == 1:
            cv2.circle(strokes, p, int(rng.integers(2, 1 + max(3, min(h, w) // 6))), colour, -1)
        else:
            period = rng.uniform(4, 12)
            angle = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[:h, :w].astype(np.float32)
            k = np.float32(2 * np.pi / period)
            phase = (np.float32(np.cos(angle)) * k) * xx + (np.float32(np.sin(angle)) * k) * yy
            strokes += np.sin(phase)[..., None] * (0.5 * np.asarray(colour, np.float32))
    tex += cv2.GaussianBlur(strokes, (0, 0), 0.8)
    return np.clip(tex + base, 0, 255).astype(np.float32)


def _shape_mask(rng: np.random.Generator, h: int, w: int, centre, radius: float) -> np.ndarray:
    """A filled random polygon or ellipse: (h, w) float32 {0, 1}."""
    mask = np.zeros((h, w), np.uint8)
    cx, cy = centre
    if rng.uniform() < 0.35:
        axes = (int(radius * rng.uniform(0.6, 1.0)), int(radius * rng.uniform(0.4, 1.0)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=n))
        radii = radius * rng.uniform(0.5, 1.0, size=n)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], -1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(np.float32)


def _affine(centre, shift, angle_deg, zoom) -> np.ndarray:
    """3x3 affine map: rotate by `angle_deg` and scale by `zoom` about `centre`, then shift."""
    a = math.radians(angle_deg)
    c, s = zoom * math.cos(a), zoom * math.sin(a)
    cx, cy = centre
    m = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    m[0, 2] = cx + shift[0] - (c * cx - s * cy)
    m[1, 2] = cy + shift[1] - (s * cx + c * cy)
    return m


def _trajectory(rng, cfg: SceneConfig, centre, max_shift, max_rot, max_zoom) -> list[np.ndarray]:
    """Affine maps A(t), t = 0..num_frames-1, frame-0 -> frame-t coordinates (A(0) = I)."""
    scale = cfg.width / 128.0
    vel = rng.uniform(-1, 1, size=2) * max_shift * scale
    rot = rng.uniform(-1, 1) * max_rot
    zoom = rng.uniform(-1, 1) * max_zoom
    shift, angle, log_zoom = np.zeros(2), 0.0, 0.0
    maps = [np.eye(3)]
    for _ in range(cfg.num_frames - 1):
        shift = shift + vel
        angle += rot
        log_zoom += math.log1p(zoom)
        maps.append(_affine(centre, shift, angle, math.exp(log_zoom)))
        vel = np.clip(vel + rng.normal(size=2) * cfg.accel * max_shift * scale,
                      -max_shift * scale, max_shift * scale)
        rot = float(np.clip(rot + rng.normal() * cfg.accel * max_rot, -max_rot, max_rot))
        zoom = float(np.clip(zoom + rng.normal() * cfg.accel * max_zoom, -max_zoom, max_zoom))
    return maps


def _warp(src: np.ndarray, m: np.ndarray, h: int, w: int, interp: int, border: int) -> np.ndarray:
    """dst(x) = src(m^-1 x) for a 3x3 affine m (OpenCV inverts the forward map)."""
    return cv2.warpAffine(src, m[:2], (w, h), flags=interp, borderMode=border)


def generate_scene(seed, cfg: SceneConfig = SceneConfig()) -> dict:
    """Generates one scene, deterministically from `seed` (an int or a sequence of ints).

    Returns:
      A dict with
        frames: (T, H, W, 3) uint8 RGB,
        flows: (T-1, H, W, 2) float32, flow from frame t to frame t+1,
        occlusions: (T-1, H, W) float32, 1 where the pixel of frame t is hidden in frame
          t+1 or leaves the image,
        layers: (T, H, W) int32, the index of the visible layer (0 = background).
    """
    rng = np.random.default_rng(seed)
    h, w, n_t = cfg.height, cfg.width, cfg.num_frames
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    # Layer l = (texture, mask, offset): its pixel (i, j) sits at (j + ox, i + oy) in frame 0.
    # Objects keep only their bounding box, so textures and warps stay small.
    layers_src = [(_texture(rng, h, w), np.ones((h, w), np.float32), (0, 0))]
    maps = [_trajectory(rng, cfg, (w / 2, h / 2), cfg.max_bg_shift, cfg.max_bg_rot, cfg.max_bg_zoom)]
    for _ in range(n_obj):
        centre = (rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h)
        radius = rng.uniform(0.12, 0.32) * min(h, w)
        mask = _shape_mask(rng, h, w, centre, radius)
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:  # degenerate polygon: keep the rng stream, skip the object
            _trajectory(rng, cfg, centre, cfg.max_obj_shift, cfg.max_obj_rot, cfg.max_obj_zoom)
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        layers_src.append((_texture(rng, y1 - y0, x1 - x0), mask[y0:y1, x0:x1], (x0, y0)))
        maps.append(_trajectory(rng, cfg, centre, cfg.max_obj_shift, cfg.max_obj_rot, cfg.max_obj_zoom))

    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    frames = np.zeros((n_t, h, w, 3), np.uint8)
    layers = np.zeros((n_t, h, w), np.int32)
    flows = np.zeros((n_t - 1, h, w, 2), np.float32)
    gain, bias = 1.0, 0.0
    for t in range(n_t):
        img = np.zeros((h, w, 3), np.float32)
        for l, (tex, mask, (ox, oy)) in enumerate(layers_src):
            m = maps[l][t]
            to_frame = m @ np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
            border = cv2.BORDER_REFLECT_101 if l == 0 else cv2.BORDER_CONSTANT
            colour = _warp(tex, to_frame, h, w, cv2.INTER_LINEAR, border)
            cover = _warp(mask, to_frame, h, w, cv2.INTER_NEAREST, border) > 0.5
            img[cover] = colour[cover]
            layers[t][cover] = l
            if t + 1 < n_t:  # flow of this layer from t to t+1 where it is visible at t
                step = maps[l][t + 1] @ np.linalg.inv(m)
                x, y = xx[cover], yy[cover]
                flows[t][cover] = np.stack([step[0, 0] * x + step[0, 1] * y + step[0, 2] - x,
                                            step[1, 0] * x + step[1, 1] * y + step[1, 2] - y], -1)
        if t > 0:
            gain *= 1.0 + rng.uniform(-1, 1) * cfg.lighting
            bias += rng.uniform(-1, 1) * 25.0 * cfg.lighting
        img = img * gain + bias
        if cfg.noise_sigma > 0:
            img += rng.normal(scale=cfg.noise_sigma, size=img.shape)
        frames[t] = np.clip(np.round(img), 0, 255).astype(np.uint8)

    occlusions = np.zeros((n_t - 1, h, w), np.float32)
    for t in range(n_t - 1):
        x2 = np.round(xx + flows[t][..., 0]).astype(np.int64)
        y2 = np.round(yy + flows[t][..., 1]).astype(np.int64)
        inside = (x2 >= 0) & (x2 < w) & (y2 >= 0) & (y2 < h)
        seen = np.full((h, w), -1, np.int32)
        seen[inside] = layers[t + 1][y2[inside], x2[inside]]
        occlusions[t] = (seen != layers[t]).astype(np.float32)
    return {"frames": frames, "flows": flows, "occlusions": occlusions, "layers": layers}
