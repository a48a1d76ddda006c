"""Serialising DEQ-Flow inference with `jax.export` (fixed input size, fixed solver budget).

`export_inference` traces `estimate_flow` for one input shape with the weights
baked in as constants and returns a `jax.export.Exported`; `save_exported`
writes its serialised bytes (plus a small JSON description beside it), and
`load_exported` / `run_exported` reload and call it with nothing but JAX: no
model code, no checkpoint.

The exported function maps
    image1, image2: (B, H, W, 3) float32, 0..255
to
    flow (B, H, W, 2), flow_lowres (B, H'/8, W'/8, 2), hidden (B, H'/8, W'/8, hdim),
    nstep (B,) int32, abs_residual (B,), rel_residual (B,).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from deq_flow_jax.evaluate.estimator import SolverSettings

OUTPUT_NAMES = ("flow", "flow_lowres", "hidden", "nstep", "abs_residual", "rel_residual")
FORMAT = "deq-flow-jax/exported-v1"


def export_inference(variables, cfg, *, height: int, width: int, batch: int = 1,
                     settings: SolverSettings = SolverSettings(), pad_mode: str = "sintel",
                     platforms: Sequence[str] | None = None):
    """Exports flow estimation for (batch, height, width, 3) inputs.

    Args:
        variables, cfg: the model (weights become constants of the exported program).
        height, width, batch: the fixed input shape (any size >= 16; padding inside).
        settings: solver, budget, tolerance and stop mode, fixed in the program.
        pad_mode: "sintel" or "kitti".
        platforms: lowering platforms (e.g. ["cpu", "cuda"]); None: the default backend.

    Returns:
        jax.export.Exported.
    """
    import jax
    import jax.numpy as jnp

    from deq_flow_jax.model import estimate_flow

    if min(height, width) < 16 or batch < 1:
        raise ValueError(f"export needs height, width >= 16 and batch >= 1; got "
                         f"{height}x{width}, batch {batch}")
    consts = jax.tree_util.tree_map(jnp.asarray, variables)
    s = settings

    def infer(image1, image2):
        r = estimate_flow(consts, cfg, image1, image2, solver=s.solver, max_steps=s.max_steps,
                          tol=s.tol, stop_mode=s.stop_mode, pad_mode=pad_mode)
        return (r.flow, r.flow_lowres, r.cache[0], r.stats.nstep, r.stats.abs_lowest,
                r.stats.rel_lowest)

    spec = jax.ShapeDtypeStruct((batch, height, width, 3), jnp.float32)
    kw = {} if platforms is None else {"platforms": tuple(platforms)}
    return jax.export.export(jax.jit(infer), **kw)(spec, spec)


def save_exported(path: str, exported, meta: dict | None = None) -> str:
    """Writes `exported.serialize()` to `path` (atomically) and `path + '.json'` describing it."""
    from deq_flow_jax.io import atomic_write_bytes, atomic_write_json

    info = {"format": FORMAT, "inputs": [str(a) for a in exported.in_avals],
            "outputs": dict(zip(OUTPUT_NAMES, (str(a) for a in exported.out_avals))),
            "platforms": list(exported.platforms), **(meta or {})}
    atomic_write_bytes(path, bytes(exported.serialize()))
    atomic_write_json(path + ".json", info)
    return path


def load_exported(path: str):
    """Reads a file written by `save_exported` -> jax.export.Exported."""
    import jax

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such exported file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return jax.export.deserialize(bytearray(data))
    except Exception as err:  # flatbuffer errors have no common type
        raise ValueError(f"{path}: not a jax.export serialisation ({type(err).__name__}: {err})") from None


def run_exported(exported, image1, image2) -> dict:
    """Calls an exported inference function on numpy images.

    Args:
        exported: from `load_exported` or `export_inference`.
        image1, image2: arrays of the exported input shape (B, H, W, 3), 0..255.

    Returns:
        {name: numpy array} for OUTPUT_NAMES.
    """
    want = tuple(exported.in_avals[0].shape)
    im1 = np.asarray(image1, np.float32)
    im2 = np.asarray(image2, np.float32)
    if im1.ndim == 3:
        im1, im2 = im1[None], im2[None]
    if im1.shape != want or im2.shape != want:
        raise ValueError(f"the exported function takes images of shape {want}; "
                         f"got {im1.shape} and {im2.shape}")
    out = exported.call(im1, im2)
    return {k: np.asarray(v) for k, v in zip(OUTPUT_NAMES, out)}
