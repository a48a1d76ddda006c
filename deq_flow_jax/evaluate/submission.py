"""Benchmark submission writers: MPI Sintel (.flo) and KITTI 2015 (16-bit PNG).

Layouts (those of the official DEQ-Flow / RAFT `create_*_submission`):

    Sintel:  OUT/clean/<scene>/frame0001.flo ... and OUT/final/<scene>/...
             (file k+1 holds the flow from frame k to frame k+1, as the bundler expects)
    KITTI:   OUT/flow/000000_10.png ... (named after the first frame), u, v in 1/64 px,
             valid = 1 everywhere; zip the `flow` folder for the server.

Sintel runs along each scene with fixed-point reuse (or a warm start) by default;
the state resets when the scene changes or frames are not consecutive. Output is
staged in a temporary folder and renamed at the end (no partial submissions); a
non-finite flow is an error naming the pair, never a written file.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from deq_flow_jax.evaluate.infer import check_finite_flow
from deq_flow_jax.evaluate.sequence import SequenceEstimator
from deq_flow_jax.io.outputs import StagedDir


def _items(source, limit):
    n = len(source) if limit is None else min(int(limit), len(source))
    for i in range(n):
        yield i, source[i]


def write_sintel_submission(estimator, sources: Mapping[str, object], out_dir: str, *,
                            reuse: str = "reuse", overwrite: bool = False,
                            limit: Optional[int] = None, progress: bool = True) -> dict:
    """Writes Sintel test flows.

    Args:
        estimator: callable(image1, image2, *, flow_init=None, cache=None) -> Estimate,
            with Sintel padding.
        sources: {"clean": source, "final": source}, items with "image1", "image2" and
            "meta" {"scene": str, "frame": int (0-based index of image1)}.
        out_dir: submission folder (must not exist unless overwrite).
        reuse: "reuse", "warm" or "none" along each scene.
        overwrite: replace an existing out_dir.
        limit: only the first `limit` pairs of each pass (for quick checks).
        progress: tqdm progress bar.

    Returns:
        {"out_dir", "files": {pass: count}, "mean_steps": {pass: float}}.
    """
    from tqdm import tqdm

    from deq_flow_jax import io

    counts, steps = {}, {}
    with StagedDir(out_dir, overwrite, command="eval --submit", flag="--submit") as stage:
        for dstype, source in sources.items():
            seq = SequenceEstimator(estimator, reuse)
            prev, n, total = None, 0, 0
            for _, item in tqdm(_items(source, limit), desc=f"sintel/{dstype}", unit="pair",
                                total=len(source) if limit is None else min(limit, len(source)),
                                disable=not progress):
                meta = item["meta"]
                scene, frame = str(meta["scene"]), int(meta["frame"])
                if prev is None or prev != (scene, frame - 1):
                    seq.reset()
                prev = (scene, frame)
                est = seq(item["image1"][None], item["image2"][None])
                check_finite_flow(est.flow[0], f"sintel {dstype} {scene} frame {frame}")
                folder = os.path.join(stage.path, dstype, scene)
                os.makedirs(folder, exist_ok=True)
                io.write_flo(os.path.join(folder, f"frame{frame + 1:04d}.flo"), est.flow[0])
                n += 1
                total += int(est.steps[0])
            counts[dstype], steps[dstype] = n, total / max(n, 1)
    return {"out_dir": os.path.abspath(out_dir), "files": counts, "mean_steps": steps}


def kitti_name(meta: Mapping, index: int) -> str:
    """The KITTI file name of a pair: meta "id" (e.g. 000000_10.png) or the index."""
    name = str(meta.get("id") or "")
    if not name:
        name = f"{index:06d}_10.png"
    name = os.path.basename(name)
    return name if name.lower().endswith(".png") else os.path.splitext(name)[0] + ".png"


def write_kitti_submission(estimator, source, out_dir: str, *, overwrite: bool = False,
                           limit: Optional[int] = None, progress: bool = True) -> dict:
    """Writes KITTI 2015 test flows as 16-bit PNGs in OUT/flow/.

    Args:
        estimator: callable(image1, image2) -> Estimate, with KITTI padding.
        source: items with "image1", "image2" and "meta" {"id": "000000_10.png", ...}.
        out_dir: submission folder (must not exist unless overwrite).
        overwrite: replace an existing out_dir.
        limit: only the first `limit` pairs.
        progress: tqdm progress bar.

    Returns:
        {"out_dir", "files": count, "mean_steps": float}.
    """
    from tqdm import tqdm

    from deq_flow_jax import io

    n, total, names = 0, 0, set()
    with StagedDir(out_dir, overwrite, command="eval --submit", flag="--submit") as stage:
        os.makedirs(os.path.join(stage.path, "flow"))
        for i, item in tqdm(_items(source, limit), desc="kitti", unit="pair",
                            total=len(source) if limit is None else min(limit, len(source)),
                            disable=not progress):
            name = kitti_name(item.get("meta", {}), i)
            if name in names:
                raise ValueError(f"KITTI submission: two pairs map to the same file {name}")
            names.add(name)
            est = estimator(item["image1"][None], item["image2"][None])
            check_finite_flow(est.flow[0], f"kitti {name}")
            io.write_kitti_flow(os.path.join(stage.path, "flow", name), est.flow[0])
            n += 1
            total += int(est.steps[0])
    return {"out_dir": os.path.abspath(out_dir), "files": n, "mean_steps": total / max(n, 1)}
