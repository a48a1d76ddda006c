"""8-bit RGB images: reading (PNG, PPM, JPEG, ...), PNG encoding and decoding.

OpenCV is used throughout (it is BGR: converted here); images are (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from deq_flow_jax.io.common import FlowFormatError, atomic_write_bytes, read_bytes


def _to_rgb8(img: np.ndarray, name: str) -> np.ndarray:
    if img.dtype == np.uint16:  # 16-bit photos: keep the 8 most significant bits
        img = (img >> 8).astype(np.uint8)
    if img.dtype != np.uint8:
        raise FlowFormatError(f"{name}: unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=-1)
    if img.ndim == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=-1)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img[..., ::-1])
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[..., 2::-1])
    raise FlowFormatError(f"{name}: unsupported image shape {img.shape}")


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes encoded image bytes -> (H, W, 3) uint8 RGB (grey and RGBA converted)."""
    if not data:
        raise FlowFormatError(f"{name}: empty image file")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FlowFormatError(f"{name}: not a readable image (corrupt, truncated or unknown format)")
    return _to_rgb8(img, name)


def read_image(path) -> np.ndarray:
    """Reads an image file -> (H, W, 3) uint8 RGB."""
    return decode_image(read_bytes(path), os.fspath(path))


def encode_png(img: np.ndarray, compression: int = 1) -> bytes:
    """Encodes a (H, W, 3) uint8 RGB (or (H, W) grey) image as PNG bytes."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"expected (H, W, 3) or (H, W) uint8, got {img.shape} {img.dtype}")
    bgr = img[..., ::-1] if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def write_image(path, img: np.ndarray) -> None:
    """Writes a (H, W, 3) uint8 RGB image (format from the extension; atomic)."""
    path = os.fspath(path)
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {img.shape} {img.dtype}")
    ext = os.path.splitext(path)[1] or ".png"
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img[..., ::-1]))
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode extension {ext!r}")
    atomic_write_bytes(path, buf.tobytes())
