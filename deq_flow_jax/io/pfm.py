"""PFM files (FlyingThings3D flow): 'PF' (3 channels) or 'Pf' (1 channel), then
'W H', then a scale whose sign gives the byte order (negative = little endian),
then float32 rows stored bottom to top."""
from __future__ import annotations

import os
import re

import numpy as np

from deq_flow_jax.io.common import FlowFormatError, atomic_write_bytes, read_bytes

_DIMS = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")


def _next_line(data: bytes, pos: int, name: str, what: str) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise FlowFormatError(f"{name}: truncated PFM header (missing {what} line)")
    return data[pos:end].rstrip(b"\r"), end + 1


def decode_pfm(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes PFM bytes -> (H, W) or (H, W, 3) float32, rows top to bottom."""
    magic, pos = _next_line(data, 0, name, "magic")
    if magic.strip() == b"PF":
        channels = 3
    elif magic.strip() == b"Pf":
        channels = 1
    else:
        raise FlowFormatError(f"{name}: bad PFM magic {magic[:8]!r} (expected b'PF' or b'Pf')")
    dims, pos = _next_line(data, pos, name, "size")
    match = _DIMS.match(dims)
    if not match:
        raise FlowFormatError(f"{name}: malformed PFM size line {dims[:32]!r} (expected 'W H')")
    width, height = int(match.group(1)), int(match.group(2))
    if width <= 0 or height <= 0:
        raise FlowFormatError(f"{name}: implausible PFM size {width}x{height}")
    scale_line, pos = _next_line(data, pos, name, "scale")
    try:
        scale = float(scale_line)
    except ValueError:
        raise FlowFormatError(f"{name}: malformed PFM scale {scale_line[:32]!r}") from None
    if scale == 0:
        raise FlowFormatError(f"{name}: PFM scale must be non-zero")
    endian = "<" if scale < 0 else ">"
    count = width * height * channels
    have = len(data) - pos
    if have < 4 * count:
        raise FlowFormatError(
            f"{name}: truncated PFM data: {have} bytes, expected {4 * count} for {width}x{height}x{channels}")
    if have > 4 * count:
        raise FlowFormatError(
            f"{name}: wrong PFM size: {have} data bytes, expected {4 * count} for {width}x{height}x{channels}")
    values = np.frombuffer(data, endian + "f4", count=count, offset=pos)
    shape = (height, width, channels) if channels == 3 else (height, width)
    return np.flipud(values.reshape(shape)).astype(np.float32)


def read_pfm(path) -> np.ndarray:
    """Reads a PFM file -> (H, W) or (H, W, 3) float32, rows top to bottom."""
    return decode_pfm(read_bytes(path), os.fspath(path))


def read_pfm_flow(path) -> np.ndarray:
    """Reads a FlyingThings3D flow PFM -> (H, W, 2) float32 (the third channel dropped)."""
    data = read_pfm(path)
    if data.ndim != 3:
        raise FlowFormatError(f"{os.fspath(path)}: a flow PFM needs 3 channels ('PF'), found 1 ('Pf')")
    return np.ascontiguousarray(data[..., :2])


def write_pfm(path, data: np.ndarray, little_endian: bool = True) -> None:
    """Writes (H, W), (H, W, 2) (padded with a zero channel) or (H, W, 3) floats as PFM."""
    data = np.asarray(data, np.float32)
    if data.ndim == 3 and data.shape[2] == 2:
        data = np.concatenate([data, np.zeros_like(data[..., :1])], axis=-1)
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] == 3)):
        raise ValueError(f"PFM data must be (H, W), (H, W, 2) or (H, W, 3), got {data.shape}")
    height, width = data.shape[:2]
    magic = b"PF" if data.ndim == 3 else b"Pf"
    endian = "<" if little_endian else ">"
    header = magic + b"\n" + f"{width} {height}\n".encode() + (b"-1.0\n" if little_endian else b"1.0\n")
    atomic_write_bytes(path, header + np.ascontiguousarray(np.flipud(data), endian + "f4").tobytes())
