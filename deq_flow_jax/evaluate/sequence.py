"""Flow along a frame sequence, with warm start or fixed-point reuse.

DEQ-Flow's state at the fixed point is z* = (h*, f*). Along a video the next
pair's fixed point is close to the current one, so the solver can start there:

* "reuse" (fixed-point reuse, the default): start from (h*, fwd(f*)), the GRU
  state as is and the low-resolution flow forward-interpolated (official
  `fixed_point_reuse`).
* "warm" (RAFT's warm start): start from (0, fwd(f*)): flow only.
* "none": every pair from (0, 0).

fwd is `forward_interpolate`. The state resets at sequence boundaries
(`reset()`) and whenever the frame size changes.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np

from deq_flow_jax.evaluate.estimator import Estimate
from deq_flow_jax.evaluate.interpolate import forward_interpolate

REUSE_MODES = ("reuse", "warm", "none")


class SequenceEstimator:
    """Wraps an estimator (a `FlowEstimator`, or any callable with its signature)
    so consecutive calls start from the previous call's fixed point.

    Args:
        estimator: callable(image1, image2, *, flow_init=None, cache=None) -> Estimate.
        mode: one of REUSE_MODES.
    """

    def __init__(self, estimator, mode: str = "reuse"):
        if mode not in REUSE_MODES:
            raise ValueError(f"reuse mode must be one of {REUSE_MODES}; got {mode!r}")
        self.estimator, self.mode = estimator, mode
        self._prev: Optional[Estimate] = None
        self._shape = None

    def reset(self) -> None:
        """Forgets the previous fixed point (call at a new sequence)."""
        self._prev = None

    def __call__(self, image1, image2) -> Estimate:
        """Flow for one pair (batch of 1), started from the previous pair's state."""
        shape = np.shape(image1)
        if shape != self._shape:
            self._prev, self._shape = None, shape
        flow_init = cache = None
        if self._prev is not None and self.mode != "none":
            fwd = forward_interpolate(self._prev.flow_lowres)
            if self.mode == "reuse":
                cache = (self._prev.hidden, fwd)
            else:
                flow_init = fwd
        est = self.estimator(image1, image2, flow_init=flow_init, cache=cache)
        self._prev = est if self.mode != "none" else None
        return est


def run_sequence(estimator, frames: Iterable[np.ndarray], mode: str = "reuse",
                 batch_size: int = 1) -> Iterator[tuple[int, Estimate]]:
    """Flow between consecutive frames.

    Args:
        estimator: callable(image1, image2, *, flow_init=None, cache=None) -> Estimate.
        frames: (H, W, 3) frames in order.
        mode: "reuse", "warm" or "none".
        batch_size: pairs per call; only with mode "none" (reuse is sequential).

    Yields:
        (i, estimate) for the pair (frame i, frame i + 1), estimate with batch 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if batch_size > 1 and mode != "none":
        raise ValueError("batch_size > 1 needs reuse mode 'none': reuse chains pairs one after another")
    seq = SequenceEstimator(estimator, mode)
    prev = None
    pending: list = []
    index = 0

    def flush():
        nonlocal index
        n = len(pending)
        # a short last batch is padded with its last pair: one compiled shape only
        full = pending + [pending[-1]] * (batch_size - n)
        im1 = np.stack([p[0] for p in full])
        im2 = np.stack([p[1] for p in full])
        est = estimator(im1, im2)
        for i in range(n):
            e = est.item(i)
            yield index, e._replace(seconds=est.seconds / n)
            index += 1
        pending.clear()

    for frame in frames:
        if prev is not None:
            if batch_size == 1:
                yield index, seq(prev[None], frame[None])
                index += 1
            else:
                pending.append((prev, frame))
                if len(pending) == batch_size:
                    yield from flush()
        prev = frame
    if pending:
        yield from flush()
