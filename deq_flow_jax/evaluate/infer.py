"""Inference on user frames: flow files, colour images, a video and solver statistics.

Output layout of `infer_frames(..., out_dir)`:

    out_dir/flow/<name>.flo      flow of the pair (frame i, frame i+1), <name> = frame i
    out_dir/flow/<name>.npy      the same as float32 numpy (with write_npy)
    out_dir/color/<name>.png     Middlebury colour coding
    out_dir/flow.mp4 | flow.gif  frame i beside its colour flow (with video)
    out_dir/stats.json           settings, per-pair solver steps / residuals / time, means

Solver cost per pair is `steps`: f-evaluations until the residual first fell
below the tolerance (the budget when it never did).

The directory is built under a temporary name beside `out_dir` and renamed at
the end, so an error leaves no partial output; an existing `out_dir` is an
error unless `overwrite`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional

import numpy as np

from deq_flow_jax.evaluate.inputs import FrameSequence, InputError
from deq_flow_jax.evaluate.sequence import REUSE_MODES, run_sequence
from deq_flow_jax.evaluate.video import VIDEO_FORMATS, VideoWriter


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


def check_output_path(out_dir: str, overwrite: bool) -> None:
    """Raises InputError if `out_dir` exists (and not overwrite) or its parent is missing."""
    if os.path.lexists(out_dir) and not overwrite:
        raise InputError(f"{out_dir}: output path exists; pass --overwrite to replace it")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"{out_dir}: exists and is not a folder")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise InputError(f"{parent}: parent folder of the output does not exist")


class StagedDir:
    """A temporary folder beside `target`, moved into place by `commit()`.

    As a context manager: commits on success, deletes the staging folder on error.
    """

    def __init__(self, target: str, overwrite: bool = False):
        check_output_path(target, overwrite)
        self.target, self.overwrite = os.path.abspath(target), overwrite
        base = os.path.basename(self.target.rstrip(os.sep)) or "out"
        self.path = tempfile.mkdtemp(prefix=f".tmp-{base}-", dir=os.path.dirname(self.target))

    def commit(self) -> str:
        if os.path.lexists(self.target):
            if not self.overwrite:
                raise InputError(f"{self.target}: output path appeared while writing; not replaced")
            old = self.target + ".old-" + os.path.basename(self.path)
            os.replace(self.target, old)
            os.replace(self.path, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.target)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "StagedDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _pair_record(name: str, est) -> dict:
    return {"name": name, "steps": int(est.steps[0]), "converged": bool(est.converged[0]),
            "nstep": int(est.nstep[0]), "abs_residual": float(est.abs_residual[0]),
            "rel_residual": float(est.rel_residual[0]), "seconds": float(est.seconds)}


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
    fps = options.fps or frames.fps or 10.0
    with StagedDir(out_dir, options.overwrite) as stage:
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
            "kind": frames.kind, "size": list(frames.size), "n_pairs": n_pairs,
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
        with open(os.path.join(stage.path, "stats.json"), "w") as f:
            json.dump(summary, f, indent=1)
    return summary


def _settings(estimator) -> dict:
    s = getattr(estimator, "settings", None)
    return dataclasses.asdict(s) if dataclasses.is_dataclass(s) else {}
