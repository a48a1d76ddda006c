"""The record layout shared by every flow dataset we prepare with TFDS.

One record = one image pair:
  image1, image2: PNG-encoded (H, W, 3) uint8 RGB (`tfds.features.Image`),
  flow: (H, W, 2) float32, (u, v) in pixels, frame 1 -> frame 2 (a (1, 1, 2) placeholder
    and has_flow=False when the split has no ground truth, e.g. Sintel/KITTI test),
  valid: (H, W) bool, where the ground truth is defined (placeholder without it),
  occlusion: (H, W) bool, pixels of frame 1 hidden in frame 2 (a placeholder and
    has_occlusion=False when unknown),
  has_flow, has_occlusion: bool,
  scene: str (Sintel scene, Things sequence, KITTI/HD1K sequence id, ...),
  frame: int32, index of frame 1 inside `scene`,
  id: str, an identifier for submissions and debugging (e.g. the file name of frame 1).
Tensors use `encoding='bytes'` (fast, no TensorFlow needed); images are PNG bytes.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from deq_flow_jax.io import encode_png


class LocalDatasetInfo(tfds.core.DatasetInfo):
    """The DatasetInfo of every builder we write (generated or from the user's local files): it
    never looks for published metadata on GCS. TFDS's lookup, run whenever a builder of an
    unprepared dataset is made, leaves an empty `tempfile.mkdtemp("tfds")` folder behind."""

    def initialize_from_bucket(self) -> None:
        return None


# TFDS cannot store empty dynamic-shape tensors: absent arrays are small placeholders.
EMPTY_FLOW = np.zeros((1, 1, 2), np.float32)
EMPTY_MASK = np.zeros((2, 2), np.bool_)  # >= 2 bytes: TFDS trims the shape to len(bytes)


def flow_features() -> tfds.features.FeaturesDict:
    """The TFDS features of a flow record (see the module docstring)."""
    return tfds.features.FeaturesDict({
        "image1": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
        "image2": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
        "flow": tfds.features.Tensor(shape=(None, None, 2), dtype=np.float32, encoding="bytes"),
        "valid": tfds.features.Tensor(shape=(None, None), dtype=np.bool_, encoding="zlib"),
        "occlusion": tfds.features.Tensor(shape=(None, None), dtype=np.bool_, encoding="zlib"),
        "has_flow": np.bool_,
        "has_occlusion": np.bool_,
        "scene": tfds.features.Text(),
        "frame": np.int32,
        "id": tfds.features.Text(),
    })


KNOWN_FLOW_LIMIT = 1000.0   # px: larger components mark unknown flow (the official loaders)


def known_flow(flow: np.ndarray, valid=None) -> np.ndarray:
    """(H, W) bool: where (H, W, 2) ground truth `flow` is known: both components below
    KNOWN_FLOW_LIMIT in magnitude (so Middlebury's 1e9 and NaN mark unknown pixels, as in the
    official loaders) and, when given, `valid` (H, W) > 0 (KITTI's sparse mask)."""
    known = np.all(np.abs(np.asarray(flow)) < KNOWN_FLOW_LIMIT, axis=-1)
    return known if valid is None else (np.asarray(valid) > 0) & known


def make_record(image1, image2, flow=None, valid=None, occlusion=None, *, scene="", frame=0,
                id="") -> dict:
    """Builds one record from numpy arrays ((H, W, 3) uint8 images, (H, W, 2) flow).

    `valid` defaults to all-true where flow is given (and |flow| < 1000 as in the
    official loader); images are PNG-encoded here.
    """
    image1, image2 = np.asarray(image1), np.asarray(image2)
    if image1.shape != image2.shape:
        raise ValueError(f"{id or scene}: frames differ in shape: {image1.shape} vs {image2.shape}")
    has_flow, has_occlusion = flow is not None, occlusion is not None
    if flow is None:
        flow, valid = EMPTY_FLOW, EMPTY_MASK
    else:
        flow = np.asarray(flow, np.float32)
        if flow.shape != image1.shape[:2] + (2,):
            raise ValueError(f"{id or scene}: flow shape {flow.shape} does not match image "
                             f"shape {image1.shape}")
        valid = known_flow(flow, valid)
    occlusion = EMPTY_MASK if occlusion is None else np.asarray(occlusion) > 0
    return {
        "image1": encode_png(image1), "image2": encode_png(image2), "flow": flow,
        "valid": np.asarray(valid, np.bool_), "occlusion": np.asarray(occlusion, np.bool_),
        "has_flow": has_flow, "has_occlusion": has_occlusion,
        "scene": str(scene), "frame": int(frame), "id": str(id),
    }
