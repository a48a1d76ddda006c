"""Variational refinement of an estimated flow (post-processing, numpy + OpenCV).

The DEQ's flow is found at 1/8 resolution and upsampled (convex combination); its fixed point
carries a sub-pixel jitter that more training lowers only slowly (docs/pretrained_history.md,
"Where the model loses to DIS"). Classical variational refinement removes most of it where the
frames are textured: `refine_flow` minimises, starting from the model's flow,

    E(u) = sum_x  delta * Psi(I2(x + u) - I1(x))          (brightness constancy)
                + gamma * Psi(|grad I2(x + u) - grad I1(x)|)   (gradient constancy)
                + alpha * Psi(|grad u_x|^2 + |grad u_y|^2)     (smoothness)

with OpenCV's `VariationalRefinement` (the last stage of OpenCV's DIS flow; Psi the
Charbonnier penalty; fixed-point iterations of the linearised Euler-Lagrange equations solved
by SOR), coarse to fine: at each level of a pyramid of `levels` halvings the increment it finds
is upsampled and added to the full-resolution flow, so the model's full-resolution detail is
kept and errors of several pixels can still be pulled in. Before it, frame 2's grey levels are
mapped onto frame 1's histogram (`normalize`; a global exposure or gamma change would otherwise
bias the brightness term, most where the frames are flat), and the brightness term is weighted
lightly against the gradient term. The parameters were chosen on the held-out rendered scenes and
photo pairs of benchmarks/pretrained.py (docs/pretrained_history.md, "Variational refinement").

One smoothness weight does not suit every region: less smoothing (alpha 10) follows slanted
surfaces and thin structures better, a fourth, 1/8-resolution level pulls in errors of several
pixels, each at a cost elsewhere. Method "fusion" (`FusedRefinement`) refines the flow under
three such settings and keeps, pixel by pixel, the candidate whose warped frame 2 matches frame 1
best over a window (`fuse_flows`: brightness and gradient differences, box-filtered; the first
candidate, the "variational" setting, wins ties and a margin, and keeps the pixels whose
starting flow leaves frame 2, where the matching cost means nothing).

Method "fusion+dis" then offers one more candidate per pixel, OpenCV's DIS flow (preset medium,
`dis_flow`), under the same matching cost (`DisFusion`, `fuse_dis`): DIS is taken where it
matches better by a margin and lies within `max_change` pixels of the fused flow, so that it can
sharpen the sub-pixel detail on textured pixels but not replace the model's flow where it went
wrong (flat or hidden regions, large motions; docs/pretrained_history.md, "DIS as a last
candidate"). With several candidate flows per pair (`SolverSettings(start="both")` or "all")
`FlowEstimator` fuses each, picks one, then offers DIS to the pick (`refine_stages`).

Refinement is not part of the DEQ model: it is applied after `deq_flow_jax.estimate_flow`,
by `FlowEstimator` when `SolverSettings.refine` is not "none" (the shipped
deq-flow-s-cpu model's stored default is in its model_config.json; `deq-flow infer / eval
--refine`), or directly:

    flow = refine_flow(image1, image2, flow)      # (H, W, 3) frames, (H, W, 2) flow, NHWC

Layouts: frames (H, W, 3) RGB or (H, W) grey, values 0..255 (uint8 or float); flow
(H, W, 2) float32 in pixels, frame 1 -> frame 2, channel 0 = x (right), 1 = y (down).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from deq_flow_jax.warp import warp_backward

REFINE_METHODS = ("none", "variational", "fusion", "fusion+dis")
DEFAULT_REFINE = "fusion+dis"     # what refine_flow does unless told (the shipped model's setting)
MIN_LEVEL_SIZE = 16      # a pyramid level is used only if both sides are at least this
MIN_DIS_SIZE = 16        # fuse_dis leaves smaller frames alone (OpenCV's DIS refuses some under 12)


@dataclasses.dataclass(frozen=True)
class VariationalRefinement:
    """Parameters of `refine_flow` (defaults: the recipe measured in docs/pretrained_history.md).

    Attributes:
        levels: pyramid levels, coarsest first: 3 = 1/4, 1/2 and full resolution (a level
            is skipped when a side would fall below MIN_LEVEL_SIZE pixels).
        fixed_point_iterations, sor_iterations: OpenCV's outer (linearisation) and inner
            (SOR) iterations at each level.
        alpha, delta, gamma: weights of smoothness, brightness and gradient constancy (DIS
            preset "medium" refines with 20, 5, 10).
        normalize: map frame 2's grey levels onto frame 1's histogram first.
    """

    levels: int = 3
    fixed_point_iterations: int = 20
    sor_iterations: int = 20
    alpha: float = 20.0
    delta: float = 0.5
    gamma: float = 10.0
    normalize: bool = True

    def __post_init__(self):
        for name in ("levels", "fixed_point_iterations", "sor_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"VariationalRefinement.{name} must be >= 1; got {getattr(self, name)}")
        for name in ("alpha", "delta", "gamma"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"VariationalRefinement.{name} must be finite and >= 0; got {v}")


@dataclasses.dataclass(frozen=True)
class FusedRefinement:
    """Parameters of `refine_flow(..., method="fusion")` (defaults: docs/pretrained_history.md,
    "Fusing refinements").

    Attributes:
        candidates: the refinements fused; the first wins ties and keeps the pixels whose
            starting flow leaves frame 2.
        window: side of the square window the matching cost is averaged over (pixels, odd).
        margin: a later candidate replaces the first only where its cost is below the
            first's divided by this (>= 1).
        brightness: weight of the grey-level difference against the gradient differences in
            the matching cost (grey levels and their Sobel derivatives / 8, both 0..255 scale).
    """

    candidates: tuple = (VariationalRefinement(),
                         VariationalRefinement(alpha=10.0, delta=1.0),
                         VariationalRefinement(levels=4, delta=1.0))
    window: int = 31
    margin: float = 1.1
    brightness: float = 0.1

    def __post_init__(self):
        if not self.candidates or not all(isinstance(c, VariationalRefinement) for c in self.candidates):
            raise ValueError("FusedRefinement.candidates must be a non-empty tuple of "
                             f"VariationalRefinement; got {self.candidates!r}")
        _check_choice("FusedRefinement", self.window, self.margin, self.brightness)


@dataclasses.dataclass(frozen=True)
class DisFusion:
    """Parameters of `fuse_dis`, the last stage of method "fusion+dis" (defaults:
    docs/pretrained_history.md, "DIS as a last candidate").

    Attributes:
        window, margin, brightness: the per-pixel choice of `fuse_flows` (DIS replaces the
            flow only where its matching cost is below the flow's divided by `margin`).
        max_change: DIS is not taken where it differs from the flow by more than this
            (pixels, end-point distance).
    """

    window: int = 15
    margin: float = 1.25
    brightness: float = 0.1
    max_change: float = 4.0

    def __post_init__(self):
        _check_choice("DisFusion", self.window, self.margin, self.brightness)
        if not (np.isfinite(float(self.max_change)) and float(self.max_change) >= 0):
            raise ValueError(f"DisFusion.max_change must be finite and >= 0; got {self.max_change}")


def _check_choice(owner: str, window, margin, brightness) -> None:
    """ValueError naming `owner`'s field unless the per-pixel choice's parameters (`fuse_flows`)
    are valid: an odd window >= 1, a finite margin >= 1, a finite brightness >= 0."""
    if int(window) < 1 or int(window) % 2 == 0:
        raise ValueError(f"{owner}.window must be a positive odd number; got {window}")
    if not (np.isfinite(float(margin)) and float(margin) >= 1):
        raise ValueError(f"{owner}.margin must be finite and >= 1; got {margin}")
    if not (np.isfinite(float(brightness)) and float(brightness) >= 0):
        raise ValueError(f"{owner}.brightness must be finite and >= 0; got {brightness}")


def check_refine(method: str) -> str:
    """`method` if it is one of REFINE_METHODS, else ValueError."""
    if method not in REFINE_METHODS:
        raise ValueError(f"refine must be one of {', '.join(REFINE_METHODS)}; got {method!r}")
    return method


def refine_stages(method: str) -> tuple[str, bool]:
    """(the refinement every candidate flow gets, whether the flow finally kept is then fused
    with DIS's) for a refine method: ("fusion", True) for "fusion+dis", else (method, False)."""
    check_refine(method)
    return ("fusion", True) if method == "fusion+dis" else (method, False)


def grey_frame(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) grey, 0..255 -> (H, W) uint8 grey (OpenCV's weights): what
    OpenCV's flow methods take (also the DIS / Farneback baselines of benchmarks/pretrained.py)."""
    import cv2
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(np.nan_to_num(img.astype(np.float32))), 0, 255).astype(np.uint8)
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img)


def match_histogram(reference: np.ndarray, image: np.ndarray) -> np.ndarray:
    """`image` (uint8 grey) with its grey levels mapped monotonically so that its cumulative
    histogram follows `reference`'s (each level to the reference level at the same quantile,
    interpolated; as scikit-image's `match_histograms`), rounded to uint8."""
    values, index, counts = np.unique(image.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    quantiles = np.cumsum(counts) / image.size
    ref_quantiles = np.cumsum(ref_counts) / reference.size
    mapped = np.interp(quantiles, ref_quantiles, ref_values.astype(np.float64))
    return np.clip(np.rint(mapped[index]), 0, 255).astype(np.uint8).reshape(image.shape)


def _variational(g1: np.ndarray, g2: np.ndarray, flow: np.ndarray,
                 params: VariationalRefinement) -> np.ndarray:
    """Coarse-to-fine variational refinement of the finite (H, W, 2) `flow` between uint8 grey
    frames (frame 2 already normalised if it is to be); may hold non-finite values."""
    import cv2

    h, w = g1.shape
    out = flow
    for level in range(int(params.levels) - 1, -1, -1):
        f = 2 ** level
        hl, wl = h // f, w // f
        if min(hl, wl) < MIN_LEVEL_SIZE:
            continue
        scale = np.array([wl / w, hl / h], np.float32)
        if f > 1:
            a = cv2.resize(g1, (wl, hl), interpolation=cv2.INTER_AREA)
            b = cv2.resize(g2, (wl, hl), interpolation=cv2.INTER_AREA)
            start = cv2.resize(out, (wl, hl), interpolation=cv2.INTER_AREA) * scale
        else:
            a, b, start = g1, g2, out
        vr = cv2.VariationalRefinement_create()
        vr.setAlpha(float(params.alpha))
        vr.setDelta(float(params.delta))
        vr.setGamma(float(params.gamma))
        vr.setFixedPointIterations(int(params.fixed_point_iterations))
        vr.setSorIterations(int(params.sor_iterations))
        refined = start.copy()                # calc refines it in place
        vr.calc(a, b, refined)
        step = (refined - start) / scale
        if f > 1:
            step = cv2.resize(step, (w, h), interpolation=cv2.INTER_LINEAR)
        out = out + step
    return out.astype(np.float32)


def matching_cost(g1: np.ndarray, g2: np.ndarray, flow: np.ndarray, window: int,
                  brightness: float = 0.1) -> np.ndarray:
    """(H, W) float32: how badly frame 2 warped back by `flow` matches frame 1 around each
    pixel: brightness * |I1 - I2w| + |dI1/dx - dI2w/dx| + |dI1/dy - dI2w/dy| (Sobel / 8),
    averaged over a `window` x `window` box. g1, g2: (H, W) grey frames; flow (H, W, 2)."""
    import cv2

    a = np.asarray(g1, np.float32)
    b = warp_backward(np.asarray(g2, np.float32), np.asarray(flow, np.float32))
    cost = brightness * np.abs(a - b)
    for dx, dy in ((1, 0), (0, 1)):
        cost += np.abs(cv2.Sobel(a, cv2.CV_32F, dx, dy) - cv2.Sobel(b, cv2.CV_32F, dx, dy)) / 8
    return cv2.boxFilter(cost, -1, (int(window), int(window)))


def leaves_frame(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose (H, W, 2) flow points outside the frame."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return ~((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))


def fuse_flows(image1, image2, flows, window: int = 31, margin: float = 1.1,
               brightness: float = 0.1, keep_first=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel choice among candidate flows by `matching_cost` (the lowest wins; later
    candidates must beat the first's cost divided by `margin`; ties go to the earlier).

    Args:
        image1, image2: (H, W, 3) RGB or (H, W) grey frames, 0..255 (frame 2 is compared as
            given: normalise its exposure first if it differs).
        flows: sequence of (H, W, 2) candidate flows.
        keep_first: optional (H, W) bool, pixels that take the first candidate regardless.

    Returns:
        ((H, W, 2) float32 fused flow, (H, W) int index of the candidate taken).
    """
    g1, g2 = grey_frame(image1), grey_frame(image2)
    flows = np.stack([np.asarray(f, np.float32) for f in flows])
    costs = np.stack([matching_cost(g1, g2, f, window, brightness) for f in flows])
    costs[1:] *= float(margin)
    choice = np.argmin(costs, axis=0)
    if keep_first is not None:
        choice[np.asarray(keep_first, bool)] = 0
    return np.take_along_axis(flows, choice[None, ..., None], axis=0)[0], choice


def pick_flow(image1, image2, flows, window: int = 31, brightness: float = 0.1) -> int:
    """Index of the candidate flow under which frame 2 warped back matches frame 1 best over
    the whole frame: `matching_cost` (frame 2's histogram matched to frame 1's first) averaged
    over the pixels where no candidate leaves the frame; the earliest wins ties, and the first
    when every pixel leaves it.

    Args:
        image1, image2: (H, W, 3) RGB or (H, W) grey frames, 0..255.
        flows: sequence of (H, W, 2) candidate flows.
    """
    g1 = grey_frame(image1)
    g2 = match_histogram(g1, grey_frame(image2))
    flows = [np.asarray(f, np.float32) for f in flows]
    inside = ~np.logical_or.reduce([leaves_frame(f) for f in flows])
    if len(flows) < 2 or not inside.any():
        return 0
    costs = [float(matching_cost(g1, g2, f, window, brightness)[inside].mean()) for f in flows]
    return int(np.argmin(costs))           # argmin: the earliest of equal costs


_DIS = {}      # preset -> OpenCV DIS instance (created once per process)


def dis_flow(image1, image2, preset: str = "medium") -> np.ndarray:
    """(H, W, 2) float32 flow of OpenCV's DIS (Kroeger et al. 2016) from image1 to image2
    ((H, W, 3) RGB or (H, W) grey, 0..255; converted with `grey_frame`); preset "ultrafast",
    "fast" or "medium" (the baseline of benchmarks/pretrained.py)."""
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    if preset not in presets:
        raise ValueError(f"dis_flow: preset must be one of {', '.join(presets)}; got {preset!r}")
    if preset not in _DIS:
        _DIS[preset] = cv2.DISOpticalFlow_create(presets[preset])
    return _DIS[preset].calc(grey_frame(image1), grey_frame(image2), None).astype(np.float32)


def fuse_dis(image1, image2, flow, params: Optional[DisFusion] = None) -> np.ndarray:
    """`flow` with, pixel by pixel, DIS's flow (`dis_flow`, preset medium) taken where it
    matches frame 1 better (`fuse_flows` on frame 2 histogram-matched to frame 1, the flow
    first) and lies within `params.max_change` pixels of `flow`; pixels whose flow leaves
    the frame keep it; frames with a side under MIN_DIS_SIZE keep it whole. image1, image2:
    (H, W, 3) or (H, W), 0..255; flow (H, W, 2). Returns (H, W, 2) float32."""
    params = DisFusion() if params is None else params
    if not isinstance(params, DisFusion):
        raise ValueError(f"fuse_dis: params must be a DisFusion; got {type(params).__name__}")
    flow = np.asarray(flow, np.float32)
    g1 = grey_frame(image1)
    g2 = grey_frame(image2)
    if g1.shape != g2.shape or flow.shape != g1.shape + (2,):
        raise ValueError(f"fuse_dis: frames {g1.shape} / {g2.shape} and flow {flow.shape} "
                         "do not fit (need (H, W[, 3]) frames and an (H, W, 2) flow)")
    if min(g1.shape) < MIN_DIS_SIZE:
        return flow.copy()
    dis = dis_flow(g1, g2)
    finite = np.isfinite(dis).all(-1)
    dis = np.where(finite[..., None], dis, flow)        # non-finite DIS pixels: never taken (below)
    far = ~finite | ~(np.linalg.norm(dis - flow, axis=-1) <= params.max_change)   # a NaN flow too
    fused, _ = fuse_flows(g1, match_histogram(g1, g2), [flow, dis], params.window,
                          params.margin, params.brightness, keep_first=leaves_frame(flow) | far)
    return fused


def refine_flow(image1, image2, flow, method: str = DEFAULT_REFINE, params=None) -> np.ndarray:
    """The flow `flow` from image1 to image2, refined (see the module doc).

    Args:
        image1, image2: (H, W, 3) RGB or (H, W) grey frames, values 0..255.
        flow: (H, W, 2) flow in pixels (x, y), the starting point.
        method: "fusion+dis" (default, the shipped model's: "fusion", then `fuse_dis`),
            "fusion", "variational" (the first candidate of the fusion alone), or "none"
            (returns the flow as float32).
        params: a VariationalRefinement for "variational", a FusedRefinement for "fusion" and
            "fusion+dis" (whose DIS stage takes `DisFusion()`); None: the defaults.

    Returns:
        (H, W, 2) float32 refined flow. Where the refinement would produce a non-finite value
        the starting flow is kept.
    """
    check_refine(method)
    flow = np.asarray(flow, np.float32)
    g1, g2 = grey_frame(image1), grey_frame(image2)
    if g1.shape != g2.shape or flow.shape != g1.shape + (2,):
        raise ValueError(f"refine_flow: frames {g1.shape} / {g2.shape} and flow {flow.shape} "
                         "do not fit (need (H, W[, 3]) frames and an (H, W, 2) flow)")
    if method == "none":
        return flow.copy()
    method, with_dis = refine_stages(method)
    kind = VariationalRefinement if method == "variational" else FusedRefinement
    params = kind() if params is None else params
    if not isinstance(params, kind):
        raise ValueError(f"refine_flow: method {method!r} takes {kind.__name__} params; "
                         f"got {type(params).__name__}")
    start = np.nan_to_num(flow, nan=0.0, posinf=0.0, neginf=0.0)
    # frame 2 matched to frame 1: for the refinements that normalise and for the fusion's cost
    matched = match_histogram(g1, g2) if method == "fusion" or params.normalize else g2

    def one(p: VariationalRefinement) -> np.ndarray:
        out = _variational(g1, matched if p.normalize else g2, start, p)
        return np.where(np.isfinite(out), out, flow)

    if method == "variational":
        return one(params)
    fused, _ = fuse_flows(g1, matched, [one(p) for p in params.candidates], params.window,
                          params.margin, params.brightness, keep_first=leaves_frame(start))
    return fuse_dis(g1, g2, fused) if with_dis else fused
