"""Training logs: `train.jsonl` (one JSON object per line), TensorBoard events, console.

Only process 0 writes. Every JSONL line has `step` and `kind` ("train" | "val").
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from deq_flow_jax.io.common import dumps_json

JSONL = "train.jsonl"
TB_DIR = "tb"


def _plain(v: Any):
    if isinstance(v, (np.generic, np.ndarray)) and np.ndim(v) == 0:
        v = v.item()
    if hasattr(v, "item") and np.ndim(v) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


def truncate_jsonl(path: str, max_step: int) -> None:
    """Drops lines logged after `max_step` (written by a run killed before its next
    checkpoint), so a resumed run does not log those steps twice. Atomic rewrite."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= max_step:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError):
                continue   # a line cut by the kill
    from deq_flow_jax.io.common import atomic_write_text
    atomic_write_text(path, "".join(keep))


class MetricLogger:
    """Writes JSONL lines and TensorBoard scalars/images for process 0 (no-op elsewhere)."""

    def __init__(self, workdir: str, *, enabled: bool = True):
        self.enabled = enabled
        self._writer = None
        self._jsonl = None
        if enabled:
            from tensorboardX import SummaryWriter
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, JSONL), "a")
            self._writer = SummaryWriter(os.path.join(workdir, TB_DIR))

    def write(self, step: int, kind: str, values: dict) -> dict:
        """Appends one JSONL line and the matching `kind/name` TensorBoard scalars."""
        line = {"step": int(step), "kind": kind}
        line.update({k: _plain(v) for k, v in values.items()})
        if self.enabled:
            self._jsonl.write(dumps_json(line) + "\n")   # strict: NaN -> null, noted
            self._jsonl.flush()
            for k, v in line.items():
                if k not in ("step", "kind") and isinstance(v, (int, float)):
                    self._writer.add_scalar(f"{kind}/{k}", v, step)
        return line

    def images(self, step: int, tag: str, images: np.ndarray) -> None:
        """Writes a batch of uint8 (N, H, W, 3) images to TensorBoard."""
        if self.enabled and len(images):
            self._writer.add_images(tag, np.asarray(images), step, dataformats="NHWC")

    def flush(self):
        if self.enabled:
            self._writer.flush()

    def close(self):
        if self.enabled:
            self._writer.close()
            self._jsonl.close()
            self.enabled = False
