"""Where the solver starts: from zero flow, from the model's own flow on smaller frames, from
the frames' dominant camera motion, or from several of these.

The DEQ's fixed point is found from an initial state; the official code starts from zero flow.
From zero the model follows motions up to a few tens of pixels at 384x512, but a motion of a
fifth of the frame's width or more (96 px there) is often lost: the solve settles on a wrong
fixed point. The same motion is half as large on frames of half the size, so

    "coarse"  runs the model on the frames at 1/4 of the working size, then at 1/2 started from
              that flow, then at full size started from that (`COARSE_SCALES`);
    "both"    solves from zero and from the coarse start, finishes both flows (upsampling,
              refinement) and keeps, per pair, the one under which frame 2 warped back matches
              frame 1 best (`refine.pick_flow`);
    "all"     as "both", plus up to two more starts, each per pair where it is large (a mean
              motion of at least `SHIFT_MIN_FRACTION` of the frame's shorter side): the frames'
              dominant translation as a constant flow ("shift": `global_shift`, phase
              correlation), and the flow of the homography that most feature matches agree on
              ("homography": `global_homography`, SIFT and RANSAC; offered where at least
              `HOMOGRAPHY_MIN_SHARE` of the matches fit it, or `HOMOGRAPHY_LOOSE_SHARE` and the
              rest are no second motion, and it is not just the shift). The
              pick chooses among the starts offered to each pair. Where neither is large it is
              "both", at no extra cost but the two estimates (about 0.1 s per 384x512 pair);
    "zero"    the official start (the default of `SolverSettings`).

A warm start (`flow_init`) or a fixed-point cache passed to the estimator replaces these.
docs/evaluation.md ("Large motions: --start") has the measurements.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from deq_flow_jax.model.padding import compute_padding

START_MODES = ("zero", "coarse", "both", "all")
CANDIDATES = {"zero": ("zero",), "coarse": ("coarse",), "both": ("zero", "coarse"),
              "all": ("zero", "coarse", "shift", "homography")}     # the solves each mode offers the pick
COARSE_SCALES = (4, 2)         # the pyramid of the coarse start: 1/4, then 1/2 of the working size
MIN_COARSE_SIDE = 64           # a level is used only if both of its sides are at least this
SHIFT_MIN_FRACTION = 1 / 20    # "all": a shift start where |shift| >= this x the shorter side
HOMOGRAPHY_MIN_INLIERS = 24    # "all": a homography start needs this many RANSAC inliers,
HOMOGRAPHY_MIN_SHARE = 0.75    # ... this share of the matches among them,
HOMOGRAPHY_LOOSE_SHARE = 0.6   # ... or this share, where the matches it leaves out are noise:
HOMOGRAPHY_SECOND_SHARE = 0.4  #     a second homography fits under this share of them,
HOMOGRAPHY_NOT_SHIFT = 2.0     # ... and to leave the constant shift by more than this (pixels)


def check_start(start: str) -> str:
    """`start` if it is one of START_MODES, else ValueError."""
    if start not in START_MODES:
        raise ValueError(f"start must be one of {', '.join(START_MODES)}; got {start!r}")
    return start


def coarse_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """The (h, w) of the coarse start's levels for a working size height x width, coarsest
    first; empty when even the finest would have a side below MIN_COARSE_SIDE."""
    sizes = [(int(round(height / s)), int(round(width / s))) for s in COARSE_SCALES]
    return [hw for hw in sizes if min(hw) >= MIN_COARSE_SIDE]


def warm_start(flow: np.ndarray, hw: tuple[int, int], pad_mode: str = "sintel") -> np.ndarray:
    """A flow of any size as the model's warm start for frames of size hw.

    flow: (B, h, w, 2) float flow in pixels of an h x w frame. Returns (B, Hp/8, Wp/8, 2)
    float32: the flow resized to hw (bilinear, components scaled by the size ratio),
    edge-padded as the model pads hw frames (`pad_mode`), area-averaged over 8x8 blocks and
    divided by 8 (the model's 1/8-resolution flow is in 1/8-resolution pixels).
    """
    import cv2

    from deq_flow_jax.evaluate.estimator import upsample_flow  # here: estimator imports this module

    h, w = (int(v) for v in hw)
    p = compute_padding(h, w, pad_mode)
    out = []
    for f in upsample_flow(flow, (h, w)):
        f = np.pad(f, ((p.top, p.bottom), (p.left, p.right), (0, 0)), mode="edge")
        hp, wp = f.shape[:2]
        out.append(cv2.resize(f, (wp // 8, hp // 8), interpolation=cv2.INTER_AREA) / 8.0)
    return np.stack(out).astype(np.float32)


def global_shift(image1: np.ndarray, image2: np.ndarray) -> tuple[float, float, float]:
    """The frames' dominant translation by phase correlation (OpenCV's `phaseCorrelate` on the
    grey frames under a Hann window): (dx, dy) in pixels, frame 2 at p + (dx, dy) showing
    frame 1 at p (the flow's convention), and the correlation peak's strength (0..1; near 1
    for a pure translation, low where no single motion dominates).

    image1, image2: (H, W, 3) RGB or (H, W) grey frames, 0..255."""
    import cv2

    from deq_flow_jax.evaluate.refine import grey_frame

    g1, g2 = (grey_frame(im).astype(np.float64) for im in (image1, image2))
    window = cv2.createHanningWindow((g1.shape[1], g1.shape[0]), cv2.CV_64F)
    (dx, dy), response = cv2.phaseCorrelate(g1, g2, window)
    return float(dx), float(dy), float(response)


def shift_start_wanted(shift: tuple[float, float], hw: tuple[int, int]) -> bool:
    """Whether a shift (dx, dy) of frames of size hw is large enough for the "all" mode's third
    start: |shift| >= SHIFT_MIN_FRACTION x the shorter side (19.2 px at 384x512). Below it
    the zero start holds the motion and the third solve is not paid for (docs/evaluation.md,
    "Large motions")."""
    return bool(np.hypot(*shift) >= SHIFT_MIN_FRACTION * min(hw))


class HomographyFit(NamedTuple):
    """`global_homography`'s result: hmat (3, 3) float64 mapping frame-1 pixels to frame-2
    pixels (None with fewer than 8 matches); inliers, matches: RANSAC inliers and matches;
    second: inliers of a second RANSAC homography fitted to the matches the first left out
    (0 with fewer than 8 of them): many where another motion holds them (an object moving on
    its own), few where they are false matches."""

    hmat: Optional[np.ndarray]
    inliers: int
    matches: int
    second: int = 0


def _ransac_homography(p1: np.ndarray, p2: np.ndarray):
    """OpenCV's findHomography with RANSAC (3 px), its random generator seeded with 0 first:
    (H or None, (N,) bool inlier mask)."""
    import cv2

    cv2.setRNGSeed(0)
    hmat, mask = cv2.findHomography(p1, p2, cv2.RANSAC, 3.0)
    if hmat is None:
        return None, np.zeros(len(p1), bool)
    return hmat, mask.ravel().astype(bool)


def global_homography(image1: np.ndarray, image2: np.ndarray) -> HomographyFit:
    """The frames' dominant homography: SIFT keypoints (up to 2,000 per frame) matched with
    Lowe's ratio test (0.8), then OpenCV's `findHomography` with RANSAC (3 px), then RANSAC
    again on the matches it left out (`HomographyFit`). Deterministic for the same frames
    (OpenCV's random generator is seeded with 0 before each RANSAC).

    image1, image2: (H, W, 3) RGB or (H, W) grey frames, 0..255."""
    import cv2

    from deq_flow_jax.evaluate.refine import grey_frame

    g1, g2 = grey_frame(image1), grey_frame(image2)
    sift = cv2.SIFT_create(nfeatures=2000)
    (k1, d1), (k2, d2) = sift.detectAndCompute(g1, None), sift.detectAndCompute(g2, None)
    if d1 is None or d2 is None or len(k1) < 2 or len(k2) < 2:
        return HomographyFit(None, 0, 0)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 8:
        return HomographyFit(None, 0, len(good))
    p1 = np.float32([k1[m.queryIdx].pt for m in good])
    p2 = np.float32([k2[m.trainIdx].pt for m in good])
    hmat, inliers = _ransac_homography(p1, p2)
    if hmat is None:
        return HomographyFit(None, 0, len(good))
    rest = ~inliers
    second = int(_ransac_homography(p1[rest], p2[rest])[1].sum()) if rest.sum() >= 8 else 0
    return HomographyFit(hmat, int(inliers.sum()), len(good), second)


def homography_flow(hmat: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 flow of the homography hmat (frame-1 -> frame-2 pixels) on an h x w
    frame: pi(H [x, y, 1]) - (x, y) at every pixel centre."""
    h, w = (int(v) for v in hw)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    q = hmat @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    with np.errstate(divide="ignore", invalid="ignore"):
        flow = np.stack([q[0] / q[2] - xs.ravel(), q[1] / q[2] - ys.ravel()], -1)
    return flow.reshape(h, w, 2).astype(np.float32)


def homography_start_wanted(flow: np.ndarray, inliers: int, matches: int,
                            shift: tuple[float, float], hw: tuple[int, int],
                            second: Optional[int] = None) -> bool:
    """Whether a homography's flow (h, w, 2) is worth the "all" mode's homography start:
    finite; supported by at least HOMOGRAPHY_MIN_INLIERS of the `matches`, and by at least
    HOMOGRAPHY_MIN_SHARE of them, or by HOMOGRAPHY_LOOSE_SHARE where a second homography fits
    fewer than HOMOGRAPHY_SECOND_SHARE of the matches left out (`second`, `HomographyFit`;
    None, not known: the first share only):
    one camera motion dominates the frame (where objects moving on their own hold many
    features, the background's homography is not theirs, and a solve started there can carry
    them along, docs/evaluation.md; the matches it leaves out then fit another motion, where a
    repetitive texture's false matches fit none); a mean motion of at least
    SHIFT_MIN_FRACTION x the shorter side (as the shift start); and somewhere more than
    HOMOGRAPHY_NOT_SHIFT px from the constant `shift` (else the shift start already is it)."""
    if inliers < HOMOGRAPHY_MIN_INLIERS or inliers < HOMOGRAPHY_LOOSE_SHARE * matches:
        return False
    if inliers < HOMOGRAPHY_MIN_SHARE * matches and (
            second is None or second >= HOMOGRAPHY_SECOND_SHARE * (matches - inliers)):
        return False
    if not np.all(np.isfinite(flow)):
        return False
    if np.linalg.norm(flow, axis=-1).mean() < SHIFT_MIN_FRACTION * min(hw):
        return False
    return bool(np.linalg.norm(flow - np.asarray(shift, np.float32), axis=-1).max() > HOMOGRAPHY_NOT_SHIFT)
