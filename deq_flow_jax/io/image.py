"""8-bit RGB images: reading (PNG, PPM, JPEG, ...), PNG encoding and decoding.

OpenCV is used throughout (it is BGR: converted here); images are (H, W, 3) uint8 RGB.
`write_image(..., comment=)` embeds a text comment in a PNG (`tEXt` chunk, keyword
"Comment") or JPEG (COM segment) and `image_comment` reads it back: how a command that writes
a single image file recognises one it wrote before replacing it (io/outputs.py).
"""
from __future__ import annotations

import os
import struct
import zlib

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


def read_image_size(path) -> tuple[int, int]:
    """(H, W) of an image file from its header (Pillow reads only the header); FlowFormatError
    naming the file if it is not an image Pillow knows."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError) as err:
        raise FlowFormatError(f"{os.fspath(path)}: cannot read this file as an image ({err})") from None
    return h, w


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


COMMENT_EXTENSIONS = (".png", ".jpg", ".jpeg")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COMMENT_KEY = b"Comment"
_HEAD_BYTES = 1 << 16          # a comment written here sits within the file's first bytes


def _png_with_comment(png: bytes, text: str) -> bytes:
    """`png` with a tEXt chunk ("Comment", latin-1 `text`) right after IHDR (bytes 8-33)."""
    data = _COMMENT_KEY + b"\0" + text.encode("latin-1")
    chunk = (struct.pack(">I", len(data)) + b"tEXt" + data
             + struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF))
    return png[:33] + chunk + png[33:]


def _jpeg_with_comment(jpg: bytes, text: str) -> bytes:
    """`jpg` with a COM segment (UTF-8 `text`) after SOI and the JFIF APP0 segment."""
    pos = 2
    if jpg[2:4] == b"\xff\xe0":
        pos = 4 + int.from_bytes(jpg[4:6], "big")
    data = text.encode("utf-8")
    if len(data) > 65533:
        raise ValueError("JPEG comment longer than 65533 bytes")
    return jpg[:pos] + b"\xff\xfe" + (len(data) + 2).to_bytes(2, "big") + data + jpg[pos:]


def _comment_of(head: bytes) -> str | None:
    """The first PNG tEXt "Comment" / JPEG COM text in `head` (a file's first bytes), or None."""
    if head.startswith(_PNG_SIGNATURE):
        pos = 8
        while pos + 8 <= len(head):
            (length,), kind = struct.unpack(">I", head[pos:pos + 4]), head[pos + 4:pos + 8]
            data = head[pos + 8:pos + 8 + length]
            if kind == b"IDAT" or len(data) < length:
                return None
            if kind == b"tEXt" and data.startswith(_COMMENT_KEY + b"\0"):
                return data[len(_COMMENT_KEY) + 1:].decode("latin-1")
            pos += 12 + length
        return None
    if head.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 4 <= len(head) and head[pos] == 0xFF:
            marker, length = head[pos + 1], int.from_bytes(head[pos + 2:pos + 4], "big")
            if marker == 0xDA or length < 2:          # start of scan: no more headers
                return None
            if marker == 0xFE:
                data = head[pos + 4:pos + 2 + length]
                return data.decode("utf-8", "replace") if len(data) == length - 2 else None
            pos += 2 + length
    return None


def image_comment(path) -> str | None:
    """The comment `write_image(path, ..., comment=...)` embedded, or None (no comment, not a
    PNG/JPEG, unreadable). Only the file's first 64 KiB are read."""
    try:
        with open(path, "rb") as f:
            return _comment_of(f.read(_HEAD_BYTES))
    except OSError:
        return None


def write_image(path, img: np.ndarray, comment: str | None = None) -> None:
    """Writes a (H, W, 3) uint8 RGB image (format from the extension; atomic).

    `comment` (PNG and JPEG only) is embedded for `image_comment` to read back.
    """
    path = os.fspath(path)
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {img.shape} {img.dtype}")
    ext = os.path.splitext(path)[1] or ".png"
    if comment is not None and ext.lower() not in COMMENT_EXTENSIONS:
        raise ValueError(f"{path}: a comment can be embedded in {'/'.join(COMMENT_EXTENSIONS)} "
                         f"files only, not {ext!r}")
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img[..., ::-1]))
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode extension {ext!r}")
    data = buf.tobytes()
    if comment is not None:
        data = (_png_with_comment if ext.lower() == ".png" else _jpeg_with_comment)(data, comment)
    atomic_write_bytes(path, data)
