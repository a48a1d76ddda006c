"""Real image pairs with known motion from OpenCV's sample data, read from the user's copy.

OpenCV's source tree keeps sample images in `samples/data/`; Debian ships that folder in its
`opencv-doc` package (`/usr/share/doc/opencv-doc/examples/data/`), and OpenCV's own
`cv2.samples.findFile` looks for it under `$OPENCV_SAMPLES_DATA_PATH`. Two of its pairs are
real photographs whose motion is known, so they score a flow method on real images that are
not in this repository (evaluation only: never a training texture):

  aloe      `aloeL.jpg`, `aloeR.jpg`, `aloeGT.png`: Middlebury's 2006 stereo scene Aloe
            (Scharstein and Pal, CVPR 2007), rectified, 1282x1110, with the left image's
            disparity in pixels (integers 43-211; 0 = unknown). Flow left -> right is
            (-disparity, 0). Scored at Middlebury's half and third sizes (`ALOE_SCALES`:
            641x555, disparities 21-106 px; 427x370, 14-70 px).
  graffiti  `graf1.png`, `graf3.png`, `H1to3p.xml`: Oxford VGG's "Graffiti" 1 and 3
            (Mikolajczyk et al., IJCV 2005), a painted wall photographed from two viewpoints
            (the sequence's first and third), 800x640, related by the homography H1to3p (frame-1 ->
            frame-2 pixels; a plane, so its flow is exact up to the homography's own accuracy
            of about a pixel). Scored at full and half size (`GRAFFITI_SCALES`; mean motion
            110 / 55 px, up to 292 / 146).

`find_samples_dir(path)` locates the folder; `aloe_pair(folder, scale)` and
`graffiti_pair(folder, scale)` return pairs in the layout of `photos.motorcycle_pair`:
{"image1", "image2": (H, W, 3) uint8 RGB, "flow": (H, W, 2) float32 (x, y) in pixels,
"valid", "occlusion", "out_of_frame": (H, W) float32 1/0, "meta"}. Pixel centres sit at
integer coordinates (OpenCV's convention).
"""
from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np

ENV_VAR = "OPENCV_SAMPLES_DATA_PATH"      # OpenCV's own variable for samples/data
DEBIAN_DIR = "/usr/share/doc/opencv-doc/examples/data"   # Debian / Ubuntu package opencv-doc
ALOE_FILES = ("aloeL.jpg", "aloeR.jpg", "aloeGT.png")
GRAFFITI_FILES = ("graf1.png", "graf3.png", "H1to3p.xml")
ALOE_SCALES = (1 / 2, 1 / 3)      # Middlebury 2006's half and third sizes
GRAFFITI_SCALES = (1.0, 1 / 2)
HOW_TO_GET = (f"OpenCV's samples/data (Debian / Ubuntu: `apt install opencv-doc`, then {DEBIAN_DIR}; "
              "without root: `apt-get download opencv-doc && dpkg -x opencv-doc_*.deb DIR`, then DIR; "
              "or samples/data of an OpenCV source checkout)")


def find_samples_dir(path: Optional[str] = None, files=ALOE_FILES + GRAFFITI_FILES) -> str:
    """The folder holding OpenCV's sample `files`: `path` if given, else $OPENCV_SAMPLES_DATA_PATH
    if set, else Debian's DEBIAN_DIR; a folder where `dpkg -x` unpacked opencv-doc stands for
    its DEBIAN_DIR inside. ValueError (one line: the folder, the first file missing, and where to
    get them) when a file is not there."""
    if path is None:
        path = os.environ.get(ENV_VAR) or DEBIAN_DIR
    path = os.path.expanduser(path)
    unpacked = os.path.join(path, DEBIAN_DIR.lstrip("/"))
    if path != DEBIAN_DIR and os.path.isdir(unpacked):
        path = unpacked
    if not os.path.isdir(path):
        raise ValueError(f"{path}: no such folder; it should hold {HOW_TO_GET}")
    for name in files:
        if not os.path.isfile(os.path.join(path, name)):
            raise ValueError(f"{path}: no {name} there; expected {HOW_TO_GET}")
    return path


def _resize_images(images, scale: float) -> tuple:
    """Area-downscales each (H, W, C) image by `scale` (<= 1) to round(W*s) x round(H*s)."""
    import cv2

    if scale == 1.0:
        return tuple(images)
    h, w = images[0].shape[:2]
    size = (int(round(w * scale)), int(round(h * scale)))
    return tuple(cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images)


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not 0.05 <= scale <= 1.0:
        raise ValueError(f"scale must be in [0.05, 1] (a downscaling); got {scale}")
    return scale


def downscale_disparity(disp: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) disparity (NaN = unknown) at full size -> (round(H*s), round(W*s)) at scale s:
    the area average of each output pixel's footprint, times the horizontal factor
    round(W*s) / W; NaN where any of the footprint is unknown (so no unknown pixel blends into
    a known one)."""
    import cv2

    disp = np.asarray(disp, np.float32)
    if scale == 1.0:
        return disp.copy()
    known = np.isfinite(disp).astype(np.float32)
    size = (int(round(disp.shape[1] * scale)), int(round(disp.shape[0] * scale)))
    cover = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    total = cv2.resize(np.where(known > 0, disp, 0.0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    full = cover > 1.0 - 1e-4
    sx = size[0] / disp.shape[1]         # the exact horizontal factor of the rounded size
    return np.where(full, total / np.maximum(cover, 1e-6) * sx, np.nan).astype(np.float32)


def aloe_pair(folder: str, scale: float = ALOE_SCALES[0]) -> dict:
    """Middlebury's Aloe stereo pair from OpenCV's samples (`find_samples_dir` folder) at
    `scale` of its 1282x1110: flow left -> right = (-disparity, 0); valid where the disparity
    is known; occlusion and out_of_frame from the disparity (`photos.stereo_occlusion`)."""
    import cv2

    from deq_flow_jax.data.photos import stereo_occlusion
    from deq_flow_jax.io import read_image

    scale = _check_scale(scale)
    left, right = (read_image(os.path.join(folder, name)) for name in ALOE_FILES[:2])
    gt_path = os.path.join(folder, ALOE_FILES[2])
    gt = cv2.imread(gt_path, cv2.IMREAD_GRAYSCALE)
    if gt is None or gt.shape != left.shape[:2] or right.shape != left.shape:
        raise ValueError(f"{gt_path}: expected a grey disparity map the size of {ALOE_FILES[0]} "
                         f"{left.shape[:2]} (and {ALOE_FILES[1]} of that size too)")
    disp = np.where(gt > 0, gt.astype(np.float32), np.nan)
    left, right = _resize_images((left, right), scale)
    disp = downscale_disparity(disp, scale)
    known = np.isfinite(disp)
    flow = np.zeros(disp.shape + (2,), np.float32)
    flow[..., 0] = np.where(known, -disp, 0.0)
    occlusion, out_of_frame = stereo_occlusion(disp)
    h, w = disp.shape
    return {"image1": left, "image2": right, "flow": flow, "valid": known.astype(np.float32),
            "occlusion": occlusion, "out_of_frame": out_of_frame,
            "meta": {"scene": "aloe", "frame": 0, "id": f"aloe_{w}x{h}", "dataset": "aloe",
                     "split": "validation", "index": 0, "scale": scale}}


def read_homography(path: str) -> np.ndarray:
    """The 3x3 float64 matrix of an OpenCV FileStorage XML such as H1to3p.xml (its first
    matrix node). ValueError naming the file if there is none or it is not finite."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    match = re.search(r"<data>(.*?)</data>", text, re.S)
    try:
        hmat = np.array([float(v) for v in match.group(1).split()], np.float64).reshape(3, 3)
    except (AttributeError, ValueError):
        raise ValueError(f"{path}: expected an OpenCV XML holding one 3x3 matrix") from None
    if not np.all(np.isfinite(hmat)) or abs(np.linalg.det(hmat)) < 1e-12:
        raise ValueError(f"{path}: the homography is not finite and invertible")
    return hmat


def graffiti_pair(folder: str, scale: float = GRAFFITI_SCALES[0]) -> dict:
    """Oxford's Graffiti 1 -> 3 from OpenCV's samples (`find_samples_dir` folder) at `scale` of
    its 800x640: flow = the homography H1to3p's (`evaluate.starts.homography_flow`, the matrix
    conjugated by the scaling); every pixel valid; out_of_frame (and occlusion) where the
    homography sends a pixel outside frame 2."""
    from deq_flow_jax.evaluate.refine import leaves_frame
    from deq_flow_jax.evaluate.starts import homography_flow
    from deq_flow_jax.io import read_image

    scale = _check_scale(scale)
    image1, image2 = (read_image(os.path.join(folder, name)) for name in GRAFFITI_FILES[:2])
    if image1.shape != image2.shape:
        raise ValueError(f"{os.path.join(folder, GRAFFITI_FILES[1])}: size {image2.shape[:2]} differs "
                         f"from {GRAFFITI_FILES[0]}'s {image1.shape[:2]}")
    hmat = read_homography(os.path.join(folder, GRAFFITI_FILES[2]))
    full = image1.shape[:2]
    image1, image2 = _resize_images((image1, image2), scale)
    h, w = image1.shape[:2]
    sx, sy = w / full[1], h / full[0]            # the exact factors of the rounded size
    # full-size pixel centres (x, y) -> (x + 0.5) * s - 0.5 at scale s (cv2.resize's convention)
    s = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    flow = homography_flow(s @ hmat @ np.linalg.inv(s), (h, w))
    out = leaves_frame(flow)
    return {"image1": image1, "image2": image2, "flow": flow, "valid": np.ones((h, w), np.float32),
            "occlusion": out.astype(np.float32), "out_of_frame": out.astype(np.float32),
            "meta": {"scene": "graffiti", "frame": 0, "id": f"graffiti_{w}x{h}", "dataset": "graffiti",
                     "split": "validation", "index": 0, "scale": scale}}
