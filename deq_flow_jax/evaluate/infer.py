"""Inference on user frames: flow files, colour images, a video and solver statistics.

Output layout of `infer_frames(..., out_dir)`:

    out_dir/flow/<name>.flo      flow of the pair (frame i, frame i+1), <name> = frame i
    out_dir/flow/<name>.npy      the same as float32 numpy (with write_npy)
    out_dir/color/<name>.png     Middlebury colour coding
    out_dir/flow.mp4 | flow.gif  frame i beside its colour flow (with video)
    out_dir/stats.json           settings, frame and working size, per-pair solver steps /
                                 residuals / time, means
    out_dir/.deq-flow-output     marker: this folder was written by deq-flow

Solver cost per pair is `steps`: f-evaluations until the residual first fell
below the tolerance (the budget when it never did).

The directory is built under a temporary name beside `out_dir` and renamed at
the end (`deq_flow_jax.io.outputs.StagedDir`), so an error leaves no partial
output; an existing `out_dir` is an error unless `overwrite` and it carries the
marker. A pair whose flow is not finite (NaN / inf) is an error naming the pair:
no file is written for it and the whole output is discarded.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import numpy as np

from deq_flow_jax.evaluate.inputs import FrameSequence, InputError
from deq_flow_jax.evaluate.sequence import REUSE_MODES, run_sequence
from deq_flow_jax.evaluate.video import VIDEO_FORMATS, VideoWriter
from deq_flow_jax.io.outputs import StagedDir


@dataclasses.dataclass(frozen=True)
class InferOptions:
    """What `infer_frames` writes and how it runs.

    Attributes:
        reuse: "reuse" (fixed-point reuse, default), "warm" or "none".
        batch_size: pairs per call (only with reuse "none").
        write_flo, write_npy, write_color: which per-pair files to write.
        video: "mp4", "gif", "none" or "auto" (mp4 when there are 2+ pairs).
        fps: video frame rate; None: the input video's, else 10.
        max_flow: colour-scale magnitude in pixels; None: per frame.
        compare: also run the other start (no reuse if reusing, else reuse) and
            report its solver steps (flows are not written twice).
        overwrite: replace an existing output folder.
    """

    reuse: str = "reuse"
    batch_size: int = 1
    write_flo: bool = True
    write_npy: bool = False
    write_color: bool = True
    video: str = "auto"
    fps: Optional[float] = None
    max_flow: Optional[float] = None
    compare: bool = False
    overwrite: bool = False

    def __post_init__(self):
        if self.reuse not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {REUSE_MODES}; got {self.reuse!r}")
        if self.video not in VIDEO_FORMATS + ("none", "auto"):
            raise ValueError(f"video must be one of {VIDEO_FORMATS + ('none', 'auto')}; got {self.video!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.batch_size > 1 and self.reuse != "none":
            raise ValueError("batch_size > 1 needs reuse 'none' (reuse chains the pairs one by one)")
        for name in ("fps", "max_flow"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0 (or None); got {value}")


def check_finite_flow(flow: np.ndarray, pair: str) -> None:
    """Raises InputError naming `pair` if `flow` holds NaN or inf (never write such a file)."""
    bad = int(np.size(flow) - np.count_nonzero(np.isfinite(flow)))
    if bad:
        raise InputError(f"{pair}: the model returned non-finite flow ({bad} of {np.size(flow)} values "
                         "NaN/inf); nothing was written: check the checkpoint (corrupt or diverged "
                         "weights?) and the frames")


def _pair_record(name: str, est) -> dict:
    return {"name": name, "steps": int(est.steps[0]), "converged": bool(est.converged[0]),
            "nstep": int(est.nstep[0]), "abs_residual": float(est.abs_residual[0]),
            "rel_residual": float(est.rel_residual[0]), "seconds": float(est.seconds),
            "start": str(est.start[0]) if est.start is not None else "zero"}


def _mean(records, key, skip_first=False):
    vals = [r[key] for r in records[1 if skip_first else 0:]]
    return float(np.mean(vals)) if vals else float("nan")


def infer_frames(estimator, frames: FrameSequence, out_dir: str,
                 options: InferOptions = InferOptions(), progress: bool = True) -> dict:
    """Runs the estimator over consecutive frames and writes the outputs.

    Args:
        estimator: callable(image1, image2, *, flow_init=None, cache=None) -> Estimate
            (a `FlowEstimator`).
        frames: a validated `FrameSequence` (see `open_frames`).
        out_dir: output folder (layout in the module docstring).
        options: `InferOptions`.
        progress: show a tqdm progress bar on stderr.

    Returns:
        The summary written to stats.json.
    """
    from tqdm import tqdm

    from deq_flow_jax import io
    from deq_flow_jax.evaluate import flow_colors

    n_pairs = len(frames) - 1
    video = options.video
    if video == "auto":
        video = "mp4" if n_pairs >= 2 else "none"
    fps = options.fps if options.fps is not None else (frames.fps or 10.0)
    with StagedDir(out_dir, options.overwrite, command="infer") as stage:
        for sub, on in (("flow", options.write_flo or options.write_npy), ("color", options.write_color)):
            if on:
                os.makedirs(os.path.join(stage.path, sub))
        writer = VideoWriter(os.path.join(stage.path, f"flow.{video}"), fps) if video != "none" else None
        records = []
        kept: dict = {}  # frames the video writer still needs, by index

        def remember(it):
            for j, frame in enumerate(it):
                kept[j] = frame
                yield frame

        try:
            pairs = run_sequence(estimator, remember(frames.frames()), options.reuse, options.batch_size)
            bar = tqdm(pairs, total=n_pairs, desc="flow", unit="pair", disable=not progress)
            for i, est in bar:
                name = frames.names[i]
                flow = est.flow[0]
                check_finite_flow(flow, frames.pair_label(i))
                if options.write_flo:
                    io.write_flo(os.path.join(stage.path, "flow", name + ".flo"), flow)
                if options.write_npy:
                    np.save(os.path.join(stage.path, "flow", name + ".npy"), flow)
                color = flow_colors.flow_to_color(flow, options.max_flow)
                if options.write_color:
                    io.write_image(os.path.join(stage.path, "color", name + ".png"), color)
                if writer is not None:
                    writer.write(flow_colors.side_by_side([kept[i], color]))
                kept.pop(i, None)
                records.append(_pair_record(name, est))
                bar.set_postfix(steps=records[-1]["steps"])
            if writer is not None:
                writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if len(records) != n_pairs:
            raise InputError(f"{frames.paths[0]}: expected {n_pairs} pairs, decoded {len(records)}")
        summary = {
            "input": frames.paths if frames.kind == "images" else frames.paths[0],
            "kind": frames.kind, "size": list(frames.size),
            "working_size": list(_working_size(estimator, frames.size)), "n_pairs": n_pairs,
            "reuse": options.reuse, "settings": _settings(estimator),
            "mean_steps": _mean(records, "steps"),
            "mean_nstep": _mean(records, "nstep"),
            "mean_seconds_after_first": _mean(records, "seconds", skip_first=True),
            "video": f"flow.{video}" if writer is not None else None,
            "pairs": records,
        }
        if options.compare:
            other = "none" if options.reuse != "none" else "reuse"
            steps = [int(e.steps[0]) for _, e in run_sequence(estimator, frames.frames(), other)]
            summary["compare"] = {"reuse": other, "steps": steps, "mean_steps": float(np.mean(steps))}
        io.atomic_write_json(os.path.join(stage.path, "stats.json"), summary)
    return summary


def _working_size(estimator, size) -> tuple[int, int]:
    """The size the model saw: `size` unless the estimator downscales (`max_size`)."""
    from deq_flow_jax.evaluate.estimator import working_size
    return working_size(*size, getattr(estimator, "max_size", None))


def _settings(estimator) -> dict:
    s = getattr(estimator, "settings", None)
    return dataclasses.asdict(s) if dataclasses.is_dataclass(s) else {}
