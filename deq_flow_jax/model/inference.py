"""Inference API: `estimate_flow` on images of any size (padding inside), jit once per shape.

    variables, cfg, deq = checkpoints.load(path)          # deq: the stored solver settings
    result = estimate_flow(variables, cfg, image1, image2, deq=deq)
    result.flow        # (B, H, W, 2) pixels, same size as the input frames
    result.cache       # (hidden, flow_lowres): pass (forward-interpolated) to the next frame

`max_steps` is exactly the number of f-evaluations. Solver settings not passed come from
`deq` as the CLI takes them (`checkpoints.evaluation_deq`: f_solver, f_max_steps x
eval_factor, f_tol, f_stop_mode; without `deq` the official evaluation, Anderson 60 steps).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from deq_flow_jax.model import deq_flow as D
from deq_flow_jax.model.config import DEQConfig, ModelConfig
from deq_flow_jax.model.forward import initial_state, make_solver, validate_pair
from deq_flow_jax.model.padding import compute_padding, pad, unpad
from deq_flow_jax.solvers import check_stop_mode


class FlowResult(NamedTuple):
    """flow (B, H, W, 2) at input size; flow_lowres (B, Hp/8, Wp/8, 2) of the padded frames;
    cache (hidden (B, Hp/8, Wp/8, hdim), flow_lowres); stats: SolverStats."""

    flow: jax.Array
    flow_lowres: jax.Array
    cache: Tuple[jax.Array, jax.Array]
    stats: Any


@functools.partial(jax.jit, static_argnames=("cfg", "solver", "max_steps", "tol", "stop_mode",
                                             "pad_mode"))
def _estimate(variables, image1, image2, flow_init, cache, *, cfg, solver, max_steps, tol,
              stop_mode, pad_mode):
    from deq_flow_jax import adjoints as A
    from deq_flow_jax.equilibrium import fixed_point
    h, w = image1.shape[1:3]
    p = compute_padding(h, w, pad_mode)
    i1, i2 = pad(image1, p), pad(image2, p)
    enc, _ = D.encode(variables, cfg, i1, i2, bn_train=False)
    args = D.f_args(variables, cfg, enc)
    z0 = initial_state(cfg, args.coords0, flow_init, cache)
    sol = fixed_point(D.DEQFunc(cfg), z0, args, solver=make_solver(solver),
                      max_steps=max_steps, tol=tol, stop_mode=stop_mode, adjoint=A.NoGrad())
    flow_up, flow_low = D.decode(variables, cfg, sol.value, args.coords0)
    return FlowResult(unpad(flow_up, p), flow_low, (sol.value[0], flow_low), sol.stats)


def estimate_flow(variables, cfg: ModelConfig, image1, image2, *, deq: DEQConfig | None = None,
                  solver: str | None = None, max_steps: int | None = None,
                  tol: float | None = None, stop_mode: str | None = None,
                  flow_init=None, cache=None, pad_mode: str = "sintel") -> FlowResult:
    """Optical flow from image1 to image2 (no gradients; batch norm in inference mode).

    Args:
      variables: {"params", "batch_stats"} (from init_model, checkpoints.load or load_official).
      cfg: the model's ModelConfig.
      image1, image2: (B, H, W, 3) or (H, W, 3) RGB, 0..255, any size >= 16x16.
      deq: the DEQConfig stored with the weights (the third value of `checkpoints.load`);
        it supplies every solver setting below that is not passed. None: the official
        evaluation settings (`checkpoints.FALLBACK_DEQ`: anderson, 60 steps, 1e-3, abs).
      solver: anderson | broyden | naive (default: deq.f_solver).
      max_steps: number of f-evaluations (default: deq.f_max_steps * deq.eval_factor; the
        shipped deq-flow-s-cpu: 24, the official evaluation 40 * 1.5 = 60).
      tol, stop_mode: stop when the `abs` / `rel` residual is below tol (default: deq.f_tol,
        deq.f_stop_mode).
      flow_init: (B, Hp/8, Wp/8, 2) warm-start flow at the padded 1/8 resolution.
      cache: (hidden, flow_lowres) from a previous FlowResult.cache (fixed-point reuse; the
        official evaluation forward-interpolates the flow before passing it).
      pad_mode: `sintel` (split padding) or `kitti` (bottom padding).

    Returns:
      FlowResult. A leading batch axis is added (and kept) for (H, W, 3) inputs.
    """
    from deq_flow_jax.checkpoints import evaluation_deq

    ev = evaluation_deq(deq)
    solver = ev.f_solver if solver is None else solver
    max_steps = ev.eval_max_steps if max_steps is None else max_steps
    tol = ev.f_tol if tol is None else tol
    stop_mode = ev.f_stop_mode if stop_mode is None else stop_mode
    image1 = jnp.asarray(image1, jnp.float32)
    image2 = jnp.asarray(image2, jnp.float32)
    if image1.ndim == 3:
        image1 = image1[None]
    if image2.ndim == 3:
        image2 = image2[None]
    validate_pair(image1, image2)
    compute_padding(1, 1, pad_mode)  # validates pad_mode
    make_solver(solver)               # validates the name early
    check_stop_mode(stop_mode)
    if int(max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    return _estimate(variables, image1, image2, flow_init, cache, cfg=cfg, solver=solver,
                     max_steps=int(max_steps), tol=float(tol), stop_mode=stop_mode,
                     pad_mode=pad_mode)


# Fitted on the 2-core CPU (DEQ-Flow-S, batch 1, 24 Anderson steps; peak RSS of the process
# 0.83 / 1.22 / 2.75 GB at 384x512 / 512x768 / 768x1024, whose level-0 correlation volumes
# hold 0.04 / 0.15 / 0.60 GB): the all-pairs correlation dominates, about 3.5 times its first
# level (the pyramid, the matmul's output, the lookups), over a fixed ~0.8 GB.
_MEMORY_BASE_BYTES = 0.8e9
_MEMORY_PER_CORR_BYTE = 3.5


def inference_memory_bytes(height: int, width: int, batch: int = 1) -> int:
    """Rough peak host memory (bytes) of one `estimate_flow` call on (batch, height, width, 3)
    frames: 0.8 GB + 3.5 x (4 N^2 bytes of the level-0 correlation volume) per sample, with
    N = (Hp/8)(Wp/8) positions of the padded frames. A size check, not a measurement: it
    grows with the square of the pixel count (1080p: ~15 GB; a 12-megapixel photo: ~500 GB)."""
    n = -(-int(height) // 8) * -(-int(width) // 8)
    return int(_MEMORY_BASE_BYTES + _MEMORY_PER_CORR_BYTE * 4.0 * n * n * int(batch))

