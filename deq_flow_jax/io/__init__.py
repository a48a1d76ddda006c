"""Optical-flow file formats: .flo, .pfm, KITTI 16-bit PNG flow, 8-bit images.

Every reader validates what it reads and raises `FlowFormatError` (a `ValueError`)
naming the file; every writer writes a temporary file and renames it into place (`atomic_path`, the one
atomic-write helper of the project; files honour the umask; JSON is strict).
Layouts: flow (H, W, 2) float32 (u, v) in pixels; images (H, W, 3) uint8 RGB.
"""
from deq_flow_jax.io.common import (
    FlowFormatError,
    apply_umask,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    dumps_json,
    strict_json,
)
from deq_flow_jax.io.flo import decode_flo, encode_flo, read_flo, write_flo
from deq_flow_jax.io.image import (
    decode_image,
    encode_png,
    image_comment,
    read_image,
    read_image_size,
    write_image,
)
from deq_flow_jax.io.kitti import (
    decode_kitti_flow,
    encode_kitti_flow,
    read_kitti_flow,
    write_kitti_flow,
)
from deq_flow_jax.io.pfm import read_pfm, read_pfm_flow, write_pfm


def read_flow(path):
    """Reads a dense flow file by extension (.flo or .pfm, any case) -> (H, W, 2) float32."""
    path = str(path)
    ext = path[path.rfind("."):].lower()
    if ext == ".flo":
        return read_flo(path)
    if ext == ".pfm":
        return read_pfm_flow(path)
    raise FlowFormatError(f"{path}: unknown flow file extension (expected .flo or .pfm)")


__all__ = [
    "FlowFormatError", "apply_umask", "atomic_path", "atomic_write_bytes", "atomic_write_text",
    "atomic_write_json", "dumps_json", "strict_json", "read_flo", "write_flo", "encode_flo", "decode_flo",
    "read_pfm", "read_pfm_flow", "write_pfm", "read_kitti_flow", "write_kitti_flow", "encode_kitti_flow",
    "decode_kitti_flow",
    "read_image", "read_image_size", "write_image", "image_comment", "decode_image", "encode_png", "read_flow",
]
