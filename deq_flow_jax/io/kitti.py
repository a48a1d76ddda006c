"""KITTI flow PNGs (also HD1K): 16-bit RGB, u = (R - 2^15) / 64, v = (G - 2^15) / 64,
valid = B (0 or 1). Read with OpenCV (Pillow/imageio truncate to 8 bits); OpenCV is BGR."""
from __future__ import annotations

import os

import cv2
import numpy as np

from deq_flow_jax.io.common import FlowFormatError, atomic_write_bytes, read_bytes


def decode_kitti_flow(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Decodes KITTI flow PNG bytes -> flow (H, W, 2) float32, valid (H, W) float32 {0, 1}."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise FlowFormatError(f"{name}: bad PNG signature (not a KITTI flow PNG)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FlowFormatError(f"{name}: corrupt or truncated PNG")
    if img.dtype != np.uint16:
        raise FlowFormatError(f"{name}: KITTI flow PNG must be 16-bit, found {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise FlowFormatError(f"{name}: KITTI flow PNG must have 3 channels, found shape {img.shape}")
    rgb = img[..., ::-1].astype(np.float32)
    flow = (rgb[..., :2] - 2.0 ** 15) / 64.0
    valid = (rgb[..., 2] > 0).astype(np.float32)
    return np.ascontiguousarray(flow), valid


def read_kitti_flow(path) -> tuple[np.ndarray, np.ndarray]:
    """Reads a KITTI/HD1K flow PNG -> (flow (H, W, 2) float32, valid (H, W) float32)."""
    return decode_kitti_flow(read_bytes(path), os.fspath(path))


def encode_kitti_flow(flow: np.ndarray, valid: np.ndarray | None = None) -> bytes:
    """Encodes flow (H, W, 2) (and optional valid (H, W)) as a 16-bit KITTI PNG.

    Flow is quantised to 1/64 px and clipped to the representable range +-512 px.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    if valid is None:
        valid = np.ones(flow.shape[:2])
    valid = np.asarray(valid)
    if valid.shape != flow.shape[:2]:
        raise ValueError(f"valid must have shape {flow.shape[:2]}, got {valid.shape}")
    uv = np.clip(np.round(64.0 * flow + 2 ** 15), 0, 2 ** 16 - 1)
    rgb = np.concatenate([uv, (valid > 0)[..., None].astype(np.float64)], axis=-1).astype(np.uint16)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_kitti_flow(path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Writes a KITTI flow PNG (atomically)."""
    atomic_write_bytes(path, encode_kitti_flow(flow, valid))
