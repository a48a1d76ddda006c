"""Function-preserving widening of a DEQ-Flow network: more GRU / flow-head channels, same flow.

`widen_variables(variables, src, dst, key)` turns the variables of `src` into those of `dst`, a
configuration equal to `src` except for a larger `hidden_dim` (GRU hidden state) and/or
`flow_head_dim` (flow head hidden width), such that the widened network has the same fixed
point and the same flow: the old channels never read the new ones.

Rules (NHWC activations, HWIO kernels; the update block may be weight-normed, W = g v / ||v||):

* every parameter starts as a fresh draw of `dst`'s initialiser (`init_model`), then the old
  values are copied into the old positions;
* the GRU kernels read [hidden, context, motion (, gma)] along the input axis: the new hidden
  channels are inserted after the old ones (offset = old hidden_dim), every other grown axis
  grows at its end;
* a kernel's weights from new input channels into old output channels are zero (in the GRU,
  the flow head and the mask head); with weight norm such zeros leave ||v|| and so W of the
  old outputs unchanged, and new outputs get g = ||v|| of their fresh v.

So the old hidden channels evolve exactly as before, whatever the new ones do; the new ones
start from zero (DEQ-Flow's initial hidden state) and receive fresh random weights. Gradients
reach the zero weights as soon as the new channels are non-zero, so training grows them from
there. A solver that mixes all components (Anderson, Broyden) follows a different trajectory
in the wider state space but has the same fixed point for the old components.

`embed` is the shared primitive; `deq_flow_jax.train.widen` applies it to a training state
(parameters, EMA, optimiser moments) and a workdir.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np

from deq_flow_jax.model.config import ModelConfig

GROWABLE = ("hidden_dim", "flow_head_dim")


def check_widening(src: ModelConfig, dst: ModelConfig) -> None:
    """Raises ValueError unless `dst` is `src` with hidden_dim / flow_head_dim grown (or equal)."""
    for f in dataclasses.fields(ModelConfig):
        a, b = getattr(src, f.name), getattr(dst, f.name)
        if f.name in GROWABLE:
            if b < a:
                raise ValueError(f"widening: {f.name} can only grow ({a} -> {b})")
        elif f.name != "name" and a != b:
            raise ValueError(f"widening: only {', '.join(GROWABLE)} may change, "
                             f"but {f.name} differs ({a!r} -> {b!r})")


def _names(path) -> list[str]:
    return [str(getattr(p, "key", getattr(p, "name", p))) for p in path]


def _is_gru_kernel(names: Sequence[str]) -> bool:
    """A (weight-normed or plain) kernel of a ConvGRU of the update block."""
    return (names[-1] in ("kernel", "weight_v") and "update_block" in names
            and any(n == "gru" or (n.startswith("gru") and n[3:].isdigit()) for n in names))


def embed(old: np.ndarray, fill: np.ndarray, names: Sequence[str], hidden_offset: int,
          zero_cross: bool) -> np.ndarray:
    """`old` placed inside a copy of `fill` (the new, larger shape).

    Args:
      old: the old array (any rank); each axis no larger than `fill`'s.
      fill: values of the new array at the new positions (a fresh draw, or zeros).
      names: the parameter's path (decides where a GRU kernel's input axis grows).
      hidden_offset: old hidden_dim: where the new hidden rows of a GRU kernel are inserted.
      zero_cross: zero a kernel's weights from new input channels into old output channels.

    Returns:
      float32 array of `fill`'s shape.
    """
    old, out = np.asarray(old), np.array(fill, dtype=np.float32, copy=True)
    if old.shape == out.shape:
        return old.astype(np.float32)
    if old.ndim != out.ndim or any(o > n for o, n in zip(old.shape, out.shape)):
        raise ValueError(f"widening: {'/'.join(names)} cannot grow from {old.shape} to {out.shape}")
    kernel = names[-1] in ("kernel", "weight_v") and old.ndim == 4
    keep, new_in = [], None
    for axis, (o, n) in enumerate(zip(old.shape, out.shape)):
        off = hidden_offset if (kernel and axis == 2 and _is_gru_kernel(names) and n > o) else o
        keep.append(np.concatenate([np.arange(off), np.arange(off + n - o, n)]).astype(np.int64))
        if kernel and axis == 2:
            new_in = np.arange(off, off + n - o)
    out[np.ix_(*keep)] = old
    if zero_cross and kernel and new_in is not None and new_in.size:
        out[np.ix_(np.arange(out.shape[0]), np.arange(out.shape[1]), new_in, keep[3])] = 0.0
    return out


def widen_tree(old: Any, fill: Any, hidden_offset: int, zero_cross: bool) -> Any:
    """`embed` over matching pytrees (same structure; leaves of `fill` as large or larger)."""
    def one(path, o, f):
        return embed(np.asarray(o), np.asarray(f), _names(path), hidden_offset, zero_cross)
    return jax.tree_util.tree_map_with_path(one, old, fill)


def widen_variables(variables: dict, src: ModelConfig, dst: ModelConfig, key: jax.Array) -> dict:
    """Variables of `src` -> variables of the wider `dst` with the same flow (see module doc).

    Args:
      variables: {"params", "batch_stats"} of a `src` model (plain or weight-normed update block).
      src, dst: the configurations (`check_widening(src, dst)` must pass).
      key: PRNG key for the new channels' weights (`init_model(dst, key)`).

    Returns:
      {"params", "batch_stats"} of `dst` as float32 NumPy-backed jax arrays.
    """
    from deq_flow_jax.model.forward import init_model
    check_widening(src, dst)
    fresh = init_model(dst, key)
    out = {"params": widen_tree(variables["params"], fresh["params"], src.hidden_dim, True)}
    if "batch_stats" in variables:
        out["batch_stats"] = widen_tree(variables["batch_stats"], fresh["batch_stats"],
                                        src.hidden_dim, True)
    return jax.tree.map(jax.numpy.asarray, out)
