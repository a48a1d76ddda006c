"""Training augmentation of flow pairs (numpy/OpenCV, runs inside grain workers).

Follows the official (RAFT / DEQ-Flow) augmentors:
  dense (Chairs, Things, Sintel, synthetic): colour jitter (asymmetric with p=0.2),
    eraser on image 2, random scale 2^U(min, max) with p=0.8 and stretch with p=0.8,
    h-flip 0.5, v-flip 0.1, random crop;
  sparse (KITTI, HD1K): symmetric colour jitter, eraser, scale (no stretch) where the
    valid flow vectors are scattered to their scaled positions, h-flip, crop with margins.
Flow moves with the pixels: resizing by (sx, sy) multiplies (u, v) by (sx, sy), an
h-flip negates u, a v-flip negates v. All randomness comes from the `np.random.Generator`
passed in, so a seed fixes the result. Images (H, W, 3) uint8, flow (H, W, 2) float32,
valid (H, W) float32.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class AugConfig:
    """Per-stage augmentation parameters (defaults: the official dense augmentor).

    `crop_size` is (height, width). `sparse=True` selects the KITTI/HD1K augmentor,
    which uses the `sparse_*` colour parameters, no stretch and no v-flip.
    """
    crop_size: tuple[int, int] = (368, 496)
    min_scale: float = -0.2
    max_scale: float = 0.5
    do_flip: bool = True
    sparse: bool = False
    spatial_prob: float = 0.8
    stretch_prob: float = 0.8
    max_stretch: float = 0.2
    h_flip_prob: float = 0.5
    v_flip_prob: float = 0.1
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.5 / 3.14
    asymmetric_color_prob: float = 0.2
    eraser_prob: float = 0.5
    eraser_bounds: tuple[int, int] = (50, 100)
    margin: tuple[int, int] = (20, 50)  # sparse crops: (y, x) margins of the official code

    def replace(self, **kw) -> "AugConfig":
        return dataclasses.replace(self, **kw)

    @staticmethod
    def sparse_default(crop_size, min_scale=-0.2, max_scale=0.4, do_flip=False) -> "AugConfig":
        """The official sparse (KITTI/HD1K) augmentor's parameters."""
        return AugConfig(crop_size=tuple(crop_size), min_scale=min_scale, max_scale=max_scale,
                         do_flip=do_flip, sparse=True, brightness=0.3, contrast=0.3,
                         saturation=0.3, hue=0.3 / 3.14)


# ---------------------------------------------------------------- photometric

def _grey(img: np.ndarray) -> np.ndarray:
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def color_jitter(rng: np.random.Generator, img: np.ndarray, cfg: AugConfig) -> np.ndarray:
    """torchvision-style ColorJitter: brightness, contrast, saturation, hue in random order.

    img: (H, W, 3) uint8 (may be two frames stacked along H, for the symmetric case).
    """
    out = img.astype(np.float32)
    for op in rng.permutation(4):
        if op == 0 and cfg.brightness > 0:
            out = out * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        elif op == 1 and cfg.contrast > 0:
            mean = _grey(out).mean()
            out = (out - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
        elif op == 2 and cfg.saturation > 0:
            grey = _grey(out)[..., None]
            out = (out - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
        elif op == 3 and cfg.hue > 0:
            shift = rng.uniform(-cfg.hue, cfg.hue)  # fraction of the hue circle
            hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
            hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(shift * 256))) % 256
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        out = np.clip(out, 0, 255)
    return np.round(out).astype(np.uint8)


def color_transform(rng, img1, img2, cfg: AugConfig):
    """Jitters both frames alike, or (dense only, p=asymmetric_color_prob) independently."""
    if not cfg.sparse and rng.uniform() < cfg.asymmetric_color_prob:
        return color_jitter(rng, img1, cfg), color_jitter(rng, img2, cfg)
    stack = color_jitter(rng, np.concatenate([img1, img2], axis=0), cfg)
    return stack[: img1.shape[0]], stack[img1.shape[0]:]


def eraser_transform(rng, img1, img2, cfg: AugConfig):
    """With p=eraser_prob, fills 1-2 random boxes of image 2 with its mean colour."""
    h, w = img1.shape[:2]
    if rng.uniform() < cfg.eraser_prob:
        img2 = img2.copy()
        mean = img2.reshape(-1, 3).mean(axis=0)
        lo, hi = cfg.eraser_bounds
        for _ in range(int(rng.integers(1, 3))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            dx, dy = int(rng.integers(lo, hi)), int(rng.integers(lo, hi))
            img2[y0:y0 + dy, x0:x0 + dx] = mean
    return img1, img2


# ---------------------------------------------------------------- spatial

def resize_dense(img1, img2, flow, valid, sx: float, sy: float):
    """Resizes by (sx, sy); flow values are multiplied by (sx, sy)."""
    img1 = cv2.resize(img1, None, fx=sx, fy=sy, interpolation=cv2.INTER_LINEAR)
    img2 = cv2.resize(img2, None, fx=sx, fy=sy, interpolation=cv2.INTER_LINEAR)
    flow = cv2.resize(flow, None, fx=sx, fy=sy, interpolation=cv2.INTER_LINEAR) * np.float32([sx, sy])
    valid = cv2.resize(valid, None, fx=sx, fy=sy, interpolation=cv2.INTER_NEAREST)
    return img1, img2, flow, valid


def resize_sparse_flow(flow, valid, sx: float, sy: float):
    """Scatters the valid flow vectors to their rescaled positions (no interpolation)."""
    h, w = flow.shape[:2]
    h1, w1 = int(round(h * sy)), int(round(w * sx))
    yy, xx = np.nonzero(valid >= 1)
    vec = flow[yy, xx] * np.float32([sx, sy])
    x1 = np.round(xx * sx).astype(np.int64)
    y1 = np.round(yy * sy).astype(np.int64)
    keep = (x1 >= 0) & (x1 < w1) & (y1 >= 0) & (y1 < h1)
    new_flow = np.zeros((h1, w1, 2), np.float32)
    new_valid = np.zeros((h1, w1), np.float32)
    new_flow[y1[keep], x1[keep]] = vec[keep]
    new_valid[y1[keep], x1[keep]] = 1.0
    return new_flow, new_valid


def _flip(img1, img2, flow, valid, axis: int):
    sign = np.float32([-1, 1]) if axis == 1 else np.float32([1, -1])
    f = lambda a: np.flip(a, axis=axis)
    return f(img1), f(img2), f(flow) * sign, f(valid)


def spatial_transform(rng, img1, img2, flow, valid, cfg: AugConfig):
    """Random scale/stretch, flips and a crop of `cfg.crop_size`."""
    ch, cw = cfg.crop_size
    h, w = img1.shape[:2]
    pad = 1 if cfg.sparse else 8
    min_scale = max((ch + pad) / h, (cw + pad) / w)
    scale = 2 ** rng.uniform(cfg.min_scale, cfg.max_scale)
    sx = sy = scale
    if not cfg.sparse and rng.uniform() < cfg.stretch_prob:
        sx *= 2 ** rng.uniform(-cfg.max_stretch, cfg.max_stretch)
        sy *= 2 ** rng.uniform(-cfg.max_stretch, cfg.max_stretch)
    sx, sy = max(sx, min_scale), max(sy, min_scale)
    do_resize = rng.uniform() < cfg.spatial_prob
    if not do_resize and (h < ch + 1 or w < cw + 1):  # too small to crop: must upscale
        do_resize, sx, sy = True, max(min_scale, 1.0), max(min_scale, 1.0)
    if do_resize:
        if cfg.sparse:
            img1 = cv2.resize(img1, None, fx=sx, fy=sy, interpolation=cv2.INTER_LINEAR)
            img2 = cv2.resize(img2, None, fx=sx, fy=sy, interpolation=cv2.INTER_LINEAR)
            flow, valid = resize_sparse_flow(flow, valid, sx, sy)
            # cv2.resize rounds sizes like we do; guard against off-by-one anyway.
            flow = cv2.resize(flow, img1.shape[1::-1], interpolation=cv2.INTER_NEAREST) \
                if flow.shape[:2] != img1.shape[:2] else flow
            valid = cv2.resize(valid, img1.shape[1::-1], interpolation=cv2.INTER_NEAREST) \
                if valid.shape[:2] != img1.shape[:2] else valid
        else:
            img1, img2, flow, valid = resize_dense(img1, img2, flow, valid, sx, sy)
    if cfg.do_flip:
        if rng.uniform() < cfg.h_flip_prob:
            img1, img2, flow, valid = _flip(img1, img2, flow, valid, axis=1)
        if not cfg.sparse and rng.uniform() < cfg.v_flip_prob:
            img1, img2, flow, valid = _flip(img1, img2, flow, valid, axis=0)
    h, w = img1.shape[:2]
    if cfg.sparse:
        my, mx = cfg.margin
        y0 = int(np.clip(rng.integers(0, h - ch + my), 0, h - ch))
        x0 = int(np.clip(rng.integers(-mx, w - cw + mx), 0, w - cw))
    else:
        y0 = int(rng.integers(0, h - ch)) if h > ch else 0
        x0 = int(rng.integers(0, w - cw)) if w > cw else 0
    crop = lambda a: a[y0:y0 + ch, x0:x0 + cw]
    return crop(img1), crop(img2), crop(flow), crop(valid)


def augment(rng: np.random.Generator, img1, img2, flow, valid, cfg: AugConfig):
    """The full augmentor: colour, eraser, spatial. Returns contiguous arrays of crop size.

    Args:
      rng: the randomness source.
      img1, img2: (H, W, 3) uint8.
      flow: (H, W, 2) float32, valid: (H, W) float32 {0, 1}.
      cfg: the parameters.
    Returns:
      (img1, img2, flow, valid) with spatial size `cfg.crop_size`.
    """
    img1, img2 = color_transform(rng, img1, img2, cfg)
    img1, img2 = eraser_transform(rng, img1, img2, cfg)
    out = spatial_transform(rng, img1, img2, flow.astype(np.float32), valid.astype(np.float32), cfg)
    return tuple(np.ascontiguousarray(a) for a in out)


def center_crop(img1, img2, flow, valid, crop_size):
    """Deterministic crop (upscaling first if the image is smaller), for un-augmented training."""
    ch, cw = crop_size
    h, w = img1.shape[:2]
    if h < ch or w < cw:
        s = max(ch / h, cw / w)
        img1, img2, flow, valid = resize_dense(img1, img2, flow, valid, s, s)
        h, w = img1.shape[:2]
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = lambda a: np.ascontiguousarray(a[y0:y0 + ch, x0:x0 + cw])
    return crop(img1), crop(img2), crop(flow), crop(valid)
