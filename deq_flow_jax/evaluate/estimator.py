"""A jitted, numpy-in numpy-out wrapper of `deq_flow_jax.model.estimate_flow`.

`FlowEstimator(variables, cfg, settings)` calls the model's jitted
`estimate_flow` (one compilation per input size and per start kind: cold, warm
start, fixed-point reuse) and returns an `Estimate` of numpy arrays, with the
solver's statistics and the wall time. With `SolverSettings(refine="fusion+dis")` (or
"fusion", "variational") the full-resolution flow is then refined on the frames
(`deq_flow_jax.evaluate.refine`); with `SolverSettings(start="coarse")`, "both" or "all"
the solver also (or only) starts from the model's own flow on smaller frames, and with "all"
also from the frames' dominant translation and homography where they are large
(`deq_flow_jax.evaluate.starts`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple, Optional

import numpy as np

from deq_flow_jax.evaluate.refine import check_refine, fuse_dis, pick_flow, refine_flow, refine_stages
from deq_flow_jax.evaluate.starts import (
    CANDIDATES,
    check_start,
    coarse_sizes,
    global_homography,
    global_shift,
    homography_flow,
    homography_start_wanted,
    shift_start_wanted,
    warm_start,
)
from deq_flow_jax.solvers import STOP_MODES, check_stop_mode, solver_name  # noqa: F401  (STOP_MODES re-exported)


@dataclasses.dataclass(frozen=True)
class SolverSettings:
    """Forward-solver settings used at evaluation and inference, and the post-processing of
    the flow.

    Attributes:
        solver: "anderson", "broyden" or "naive" (plain fixed-point iteration).
        max_steps: solver budget (official: f_thres * eval_factor, 40 * 1.5 = 60).
        tol: stopping tolerance on the residual.
        stop_mode: "abs" (||f(z) - z||) or "rel" (divided by ||f(z)||).
        refine: "none" (the model's flow as it is), "variational" (`evaluate.refine`:
            coarse-to-fine variational refinement of the full-resolution flow, after the
            model), "fusion" (three such refinements fused pixel by pixel) or "fusion+dis"
            (then also OpenCV's DIS flow where it matches better and stays within 4 px; with
            start "both" / "all" after the pick).
        start: where the solver starts (`evaluate.starts`): "zero" (zero flow, official),
            "coarse" (the model's own flow on a 1/4 -> 1/2 pyramid of the frames), "both"
            (both, finished, and per pair the one matching the frames better) or "all" (as
            "both", plus a start from the frames' dominant translation where it is large).
    """

    solver: str = "anderson"
    max_steps: int = 60
    tol: float = 1e-3
    stop_mode: str = "abs"
    refine: str = "none"
    start: str = "zero"

    def __post_init__(self):
        object.__setattr__(self, "solver", solver_name(self.solver))   # aliases -> canonical
        check_stop_mode(self.stop_mode)
        check_refine(self.refine)
        check_start(self.start)
        if int(self.max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1; got {self.max_steps}")
        if not self.tol >= 0:     # as fixed_point: 0 runs the whole budget (DEQConfig.f_tol = 0)
            raise ValueError(f"tol must be >= 0; got {self.tol}")


class Estimate(NamedTuple):
    """One batch of flow estimates (numpy).

    Attributes:
        flow: (B, H, W, 2) float32 flow at input resolution, pixels (refined when the
            settings say so; `flow_lowres` is always the model's own).
        flow_lowres: (B, H'/8, W'/8, 2) flow at 1/8 of the padded size (H', W') of the frames
            the model saw (the working size with `FlowEstimator(max_size=...)`).
        hidden: (B, H'/8, W'/8, hdim) GRU state at the fixed point.
        nstep: (B,) int step count of the returned (lowest-residual) iterate
            (the solver's `SolverStats.nstep`, official counting).
        abs_residual, rel_residual: (B,) lowest residuals reached.
        seconds: wall time of the call (compilation included on a first call; with
            start "coarse" / "both" / "all" every solve of the call).
        steps: (B,) int f-evaluations until the stop-mode residual first fell below
            the tolerance (max_steps when it never did): the cost of the solve.
        converged: (B,) bool, the tolerance was reached.
        start: (B,) str, the start whose solve the flow is: "zero", "coarse", "shift" or
            "homography"
            (`SolverSettings.start`, `evaluate.starts`); the solver fields above are that solve's.
    """

    flow: np.ndarray
    flow_lowres: np.ndarray
    hidden: np.ndarray
    nstep: np.ndarray
    abs_residual: np.ndarray
    rel_residual: np.ndarray
    seconds: float
    steps: np.ndarray
    converged: np.ndarray
    start: Optional[np.ndarray] = None

    def item(self, i: int) -> "Estimate":
        """The i-th sample, keeping a batch axis of 1."""
        s = slice(i, i + 1)
        return Estimate(self.flow[s], self.flow_lowres[s], self.hidden[s], self.nstep[s],
                        self.abs_residual[s], self.rel_residual[s], self.seconds,
                        self.steps[s], self.converged[s],
                        None if self.start is None else self.start[s])


def _as_batch(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"images must be (H, W, 3) or (B, H, W, 3); got {image.shape}")
    return image.astype(np.float32)


def working_size(height: int, width: int, max_size: Optional[int]) -> tuple[int, int]:
    """The (h, w) the model sees for frames of height x width: scaled (aspect kept) so that
    the longer side is at most `max_size`; unchanged when max_size is None or 0 or the
    frames already fit."""
    if not max_size or max(height, width) <= max_size:
        return int(height), int(width)
    s = max_size / max(height, width)
    return max(8, int(round(height * s))), max(8, int(round(width * s)))


def _resize_batch(images: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(B, H, W, C) float32 -> (B, h, w, C), area averaging (downscaling)."""
    import cv2
    return np.stack([cv2.resize(im, (hw[1], hw[0]), interpolation=cv2.INTER_AREA) for im in images])


def upsample_flow(flow: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(B, h, w, 2) flow in pixels of h x w -> (B, H, W, 2) in pixels of H x W: bilinear
    (pixel centres aligned, as cv2.resize) and each component scaled by the size ratio."""
    import cv2
    h, w = flow.shape[1:3]
    scale = np.array([hw[1] / w, hw[0] / h], np.float32)
    return np.stack([cv2.resize(f, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) * scale
                     for f in np.asarray(flow, np.float32)])


class FlowEstimator:
    """Estimates flow with fixed solver settings (and, with `settings.refine`, refines it).

    Args:
        variables: model variables ({"params", "batch_stats"}).
        cfg: the `ModelConfig`.
        settings: `SolverSettings`.
        pad_mode: "sintel" (pad evenly) or "kitti" (pad at the bottom).
        max_size: None / 0: frames at their own size. Else frames whose longer side exceeds
            it are downscaled (area) to `working_size` for the model, and `Estimate.flow` is
            upsampled back to the frame size (`upsample_flow`); `flow_lowres`, `hidden` and
            the reuse cache stay at the working size (1/8 of it, padded).
    """

    def __init__(self, variables, cfg, settings: SolverSettings = SolverSettings(),
                 pad_mode: str = "sintel", max_size: Optional[int] = None):
        if pad_mode not in ("sintel", "kitti"):
            raise ValueError(f"pad_mode must be 'sintel' or 'kitti'; got {pad_mode!r}")
        if max_size is not None and max_size != 0 and max_size < 32:
            raise ValueError(f"max_size must be 0 / None (off) or >= 32; got {max_size}")
        self.variables, self.cfg, self.settings, self.pad_mode = variables, cfg, settings, pad_mode
        self.max_size = max_size or None

    @classmethod
    def from_checkpoint(cls, path: Optional[str] = None, which: str = "best", **kwargs) -> "FlowEstimator":
        """The estimator the commands build for a checkpoint without solver flags: its stored
        evaluation solver (`checkpoints.evaluation_deq`) and "inference" entry (refine, start).
        path: a model directory, a training workdir, or None for the shipped default model;
        which: "best" / "latest" checkpoint of a workdir; kwargs: pad_mode, max_size."""
        from deq_flow_jax import checkpoints

        variables, cfg, deq = checkpoints.load(path, which)
        ev = checkpoints.evaluation_deq(deq)
        settings = SolverSettings(solver=ev.f_solver, max_steps=ev.eval_max_steps, tol=ev.f_tol,
                                  stop_mode=ev.f_stop_mode, **checkpoints.inference(path))
        return cls(variables, cfg, settings, **kwargs)

    def __call__(self, image1, image2, *, flow_init: Optional[np.ndarray] = None,
                 cache: Optional[tuple] = None) -> Estimate:
        """Flow from image1 to image2.

        Args:
            image1, image2: (H, W, 3) or (B, H, W, 3), values 0..255 (uint8 or float).
            flow_init: optional (B, H'/8, W'/8, 2) initial low-resolution flow (warm start).
            cache: optional (hidden, flow_lowres) of a previous fixed point (reuse).
            Either replaces the settings' start (the solve starts there, once).
        """
        im1, im2 = _as_batch(image1), _as_batch(image2)
        if im1.shape != im2.shape:
            raise ValueError(f"image1 {im1.shape} and image2 {im2.shape} differ in shape")
        t0 = time.perf_counter()
        size = im1.shape[1:3]
        work = working_size(*size, self.max_size)
        frames = im1, im2                    # at their own size, for the refinement
        if work != size:
            im1, im2 = _resize_batch(im1, work), _resize_batch(im2, work)
        start = self.settings.start if flow_init is None and cache is None else "zero"
        runs = []       # (start name, solve result, finished flow, (B,) bool offered to the pick)

        def run(name, init, cache=None, offered=None):
            res = self._solve(im1, im2, init, cache)
            offered = np.ones(len(im1), bool) if offered is None else offered
            runs.append((name, res, self._finish(res, frames, size, work), offered))

        # each pair's dominant translation: the shift start's, and what the homography start must differ from
        shifts = ([global_shift(a, b)[:2] for a, b in zip(im1, im2)]
                  if {"shift", "homography"} & set(CANDIDATES[start]) else None)
        for name in CANDIDATES[start]:
            if name == "zero":
                run("zero", flow_init, cache)
            elif name == "coarse":
                init = self._coarse_start(im1, im2)
                if init is not None:         # None: frames too small for the pyramid
                    run("coarse", init)
            else:
                make = self._shift_start if name == "shift" else self._homography_start
                init, offered = make(im1, im2, shifts)
                if init is not None:         # None: no pair's shift / homography is large enough
                    run(name, init, offered=offered)
        if not runs:                         # "coarse" on frames too small for its pyramid
            run("zero", None)
        pick = np.zeros(len(im1), np.int64)
        for i, (a, b) in enumerate(zip(*frames)):
            ks = [k for k, r in enumerate(runs) if r[3][i]]
            if len(ks) > 1:
                pick[i] = ks[pick_flow(a, b, [runs[k][2][i] for k in ks])]
        flow = np.stack([runs[k][2][i] for i, k in enumerate(pick)])
        s = self.settings
        if refine_stages(s.refine)[1]:
            flow = np.stack([fuse_dis(a, b, f) for a, b, f in zip(*frames, flow)])
        seconds = time.perf_counter() - t0

        def take(get):
            return np.stack([np.asarray(get(runs[k][1]))[i] for i, k in enumerate(pick)])

        trace = take(lambda r: (r.stats.abs_trace if s.stop_mode == "abs" else r.stats.rel_trace).T).T
        steps, converged = steps_to_tolerance(trace, s.tol)
        return Estimate(flow, take(lambda r: r.flow_lowres).astype(np.float32), take(lambda r: r.cache[0]),
                        take(lambda r: r.stats.nstep), take(lambda r: r.stats.abs_lowest),
                        take(lambda r: r.stats.rel_lowest), seconds, steps, converged,
                        np.array([runs[k][0] for k in pick]))

    def _solve(self, im1: np.ndarray, im2: np.ndarray, flow_init, cache):
        """The model's FlowResult (numpy) on (B, h, w, 3) float32 frames."""
        import jax

        from deq_flow_jax.model import estimate_flow

        s = self.settings
        res = estimate_flow(self.variables, self.cfg, im1, im2, solver=s.solver,
                            max_steps=s.max_steps, tol=s.tol, stop_mode=s.stop_mode,
                            flow_init=flow_init, cache=cache, pad_mode=self.pad_mode)
        return jax.device_get(jax.block_until_ready(res))

    def _finish(self, res, frames, size, work) -> np.ndarray:
        """(B, H, W, 2) flow of a solve at the frames' own size, refined if the settings say so."""
        flow = np.asarray(res.flow, np.float32)
        if work != size:
            flow = upsample_flow(flow, size)
        method = refine_stages(self.settings.refine)[0]     # the DIS stage follows the pick
        if method != "none":
            flow = np.stack([refine_flow(a, b, f, method) for a, b, f in zip(*frames, flow)])
        return flow

    def _coarse_start(self, im1: np.ndarray, im2: np.ndarray) -> Optional[np.ndarray]:
        """The coarse start's warm start (B, h'/8, w'/8, 2) for (B, h, w, 3) working-size frames:
        the model's flow at each of `coarse_sizes`, each level started from the one before;
        None when the frames are too small for any level."""
        flow = None
        for hw in coarse_sizes(*im1.shape[1:3]):
            init = None if flow is None else warm_start(flow, hw, self.pad_mode)
            flow = np.asarray(self._solve(_resize_batch(im1, hw), _resize_batch(im2, hw), init, None).flow)
        return None if flow is None else warm_start(flow, im1.shape[1:3], self.pad_mode)

    def _shift_start(self, im1: np.ndarray, im2: np.ndarray, shifts) -> tuple[Optional[np.ndarray], np.ndarray]:
        """The shift start for (B, h, w, 3) working-size frames and each pair's `global_shift`
        (dx, dy) in `shifts`: ((B, h'/8, w'/8, 2) warm start of each shift as a constant flow,
        (B,) bool the pairs whose shift is large enough to be offered, `shift_start_wanted`);
        (None, all False) when none is."""
        hw = im1.shape[1:3]
        offered = np.array([shift_start_wanted(s, hw) for s in shifts])
        if not offered.any():
            return None, offered
        flow = np.zeros((len(im1),) + tuple(hw) + (2,), np.float32)
        flow[:] = np.asarray(shifts, np.float32)[:, None, None, :]
        return warm_start(flow, hw, self.pad_mode), offered

    def _homography_start(self, im1: np.ndarray, im2: np.ndarray, shifts) -> tuple[Optional[np.ndarray], np.ndarray]:
        """The homography start for (B, h, w, 3) working-size frames and each pair's
        `global_shift` (dx, dy) in `shifts`: ((B, h'/8, w'/8, 2) warm start of each pair's
        `global_homography` flow, (B,) bool the pairs it is offered to,
        `homography_start_wanted`); (None, all False) when none is."""
        hw = im1.shape[1:3]
        flow = np.zeros((len(im1),) + tuple(hw) + (2,), np.float32)
        offered = np.zeros(len(im1), bool)
        for i, (a, b, shift) in enumerate(zip(im1, im2, shifts)):
            fit = global_homography(a, b)
            if fit.hmat is not None:
                f = homography_flow(fit.hmat, hw)
                if homography_start_wanted(f, fit.inliers, fit.matches, shift, hw, fit.second):
                    flow[i], offered[i] = f, True
        if not offered.any():
            return None, offered
        return warm_start(flow, hw, self.pad_mode), offered


def steps_to_tolerance(trace: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps needed to get below `tol`, from a (max_steps, B) residual trace.

    Returns:
        steps (B,) int: 1 + the first row whose residual is below tol, or max_steps;
        converged (B,) bool.
    """
    trace = np.asarray(trace)
    below = trace < tol
    converged = below.any(axis=0)
    first = np.argmax(below, axis=0) + 1
    return np.where(converged, first, trace.shape[0]).astype(np.int32), converged
