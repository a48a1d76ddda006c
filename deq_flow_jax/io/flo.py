"""Middlebury .flo files: float32 magic 202021.25, int32 width, int32 height, then
H*W*2 little-endian float32 values, row-major, (u, v) interleaved."""
from __future__ import annotations

import os

import numpy as np

from deq_flow_jax.io.common import FlowFormatError, atomic_write_bytes, read_bytes

FLO_MAGIC = np.float32(202021.25)
_MAX_SIDE = 1 << 16


def decode_flo(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes .flo bytes -> (H, W, 2) float32 (u, v) in pixels.

    Raises:
      FlowFormatError: naming `name`, on a bad magic number, an implausible size,
        a truncated file or trailing bytes.
    """
    if len(data) < 12:
        raise FlowFormatError(f"{name}: truncated .flo header ({len(data)} bytes, need 12)")
    magic = np.frombuffer(data, "<f4", count=1)[0]
    if magic != FLO_MAGIC:
        raise FlowFormatError(f"{name}: bad .flo magic number {magic!r} (expected 202021.25)")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if not (0 < width < _MAX_SIDE and 0 < height < _MAX_SIDE):
        raise FlowFormatError(f"{name}: implausible .flo size width={width} height={height}")
    expected = 12 + 8 * width * height
    if len(data) < expected:
        raise FlowFormatError(
            f"{name}: truncated .flo file: {len(data)} bytes, expected {expected} for {width}x{height}")
    if len(data) > expected:
        raise FlowFormatError(
            f"{name}: wrong .flo size: {len(data)} bytes, expected {expected} for {width}x{height}")
    flow = np.frombuffer(data, "<f4", count=2 * width * height, offset=12)
    return flow.reshape(height, width, 2).astype(np.float32)


def encode_flo(flow: np.ndarray) -> bytes:
    """Encodes a (H, W, 2) flow as .flo bytes."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] == 0 or flow.shape[1] == 0:
        raise ValueError(f"flow must have shape (H, W, 2) with H, W > 0, got {flow.shape}")
    height, width = flow.shape[:2]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    return header + np.ascontiguousarray(flow, dtype="<f4").tobytes()


def read_flo(path) -> np.ndarray:
    """Reads a .flo file -> (H, W, 2) float32."""
    return decode_flo(read_bytes(path), os.fspath(path))


def write_flo(path, flow: np.ndarray) -> None:
    """Writes a (H, W, 2) flow to a .flo file (atomically)."""
    atomic_write_bytes(path, encode_flo(flow))
