"""Padding images to a multiple of 8 by edge replication, and undoing it (official InputPadder).

`sintel` mode splits the padding top/bottom and left/right; `kitti` mode pads only
at the bottom (and splits the width). Arrays are (..., H, W, C).
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import jax.numpy as jnp


class Padding(NamedTuple):
    """Pixels added (top, bottom, left, right)."""

    top: int
    bottom: int
    left: int
    right: int


def compute_padding(height: int, width: int, mode: str = "sintel", multiple: int = 8) -> Padding:
    """Padding that makes (height, width) multiples of `multiple`."""
    if mode not in ("sintel", "kitti"):
        raise ValueError(f"pad_mode must be 'sintel' or 'kitti', got {mode!r}")
    ph = (-height) % multiple
    pw = (-width) % multiple
    if mode == "sintel":
        return Padding(ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
    return Padding(0, ph, pw // 2, pw - pw // 2)


def pad(x, p: Padding):
    """Edge-replicate (..., H, W, C) by `p`."""
    widths = [(0, 0)] * (x.ndim - 3) + [(p.top, p.bottom), (p.left, p.right), (0, 0)]
    return jnp.pad(x, widths, mode="edge")


def unpad(x, p: Padding):
    """Crop (..., H, W, C) padded with `p` back to the original size."""
    h, w = x.shape[-3], x.shape[-2]
    return x[..., p.top:h - p.bottom, p.left:w - p.right, :]


def padded_shape(height: int, width: int, mode: str = "sintel") -> Tuple[int, int]:
    p = compute_padding(height, width, mode)
    return height + p.top + p.bottom, width + p.left + p.right
