"""Widen a training workdir's latest state into a new workdir (`deq-flow widen`).

`widen_state` applies `model.widen` to everything a resumed run reads: the parameters and their
EMA (same fresh draw for the new channels, so the two agree there), the AdamW moments (first
moments of new entries 0, second moments the mean of the old entries of the same parameter, so
the first steps of the new weights have the usual Adam size) and nothing else (step, RNG,
batch statistics, data position unchanged). With `method="split"` the parameters and the EMA
are split by one draw of `model.widen.split_plans`, and the moments with them
(`split_moments`: copies inherit their original's moments, scaled by their share).
`widen_workdir` writes the result as the checkpoint of the same step in a new workdir, with the
data iterator's position and a `config.json` that records the new widths, so that

    deq-flow train --config CONFIG --config.model.hidden_dim=N --workdir DST

continues the run with the same batches, learning-rate schedule and step count. The source
workdir is only read; the destination must not exist and is written into a hidden staging
folder that is renamed into place at the end.
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np

from deq_flow_jax.model import widen as mw
from deq_flow_jax.model.config import ModelConfig
from deq_flow_jax.model.widen import _names, check_widening, embed, widen_tree


def _moments(old, fill, hidden_offset: int):
    """Optimiser-state leaves: old values embedded; new `nu` entries get the leaf's old mean."""
    def one(path, o, f):
        o, f = np.asarray(o), np.asarray(f)
        if o.shape == f.shape:
            return o
        names = _names(path)
        base = np.full(f.shape, float(np.mean(o)) if "nu" in names else 0.0, np.float32)
        return embed(o, base, names, hidden_offset, zero_cross=False)
    return jax.tree_util.tree_map_with_path(one, old, fill)


def widen_state(state, src: ModelConfig, dst: ModelConfig, tx, key: jax.Array,
                method: str = "fresh", noise: float = 0.0):
    """A `TrainState` of `src` -> the same state for the wider `dst` (module doc).

    Args:
      state: the restored TrainState (params, ema_params, opt_state, ...).
      src, dst: model configurations (`model.widen.check_widening`).
      tx: the run's optimiser transformation (`train.optim.make_optimizer`), for the layout of
        the new optimiser state.
      key: PRNG key of the new channels' weights ("fresh") or of the split ("split").
      method: `model.widen.METHODS`: "fresh" or "split" (`model.widen.widen_variables`).
      noise: "split" only: relative noise on the copies' incoming weights, the same draw for the
        parameters and the EMA (`model.widen.split_plans`).
    """
    from deq_flow_jax.model.forward import init_model
    mw.check_method(method, noise)
    check_widening(src, dst)
    ema = state.ema_params
    if method == "split":
        plans = mw.split_plans(src, dst, key, noise)   # one draw for the params, EMA and moments
        params = mw.split_params(state.params, plans)
        mw.check_shapes(params, init_model(dst, jax.random.PRNGKey(0))["params"], "params")
        if jax.tree.leaves(ema):
            ema = mw.split_params(ema, plans)
        opt = mw.split_moments(state.opt_state, plans)
        mw.check_shapes(opt, tx.init(params), "optimiser state")
    else:
        fresh = init_model(dst, key)["params"]    # one draw: the EMA's new entries equal the params'
        params = widen_tree(state.params, fresh, src.hidden_dim, zero_cross=True)
        if jax.tree.leaves(ema):
            ema = widen_tree(ema, fresh, src.hidden_dim, zero_cross=True)
        opt = _moments(state.opt_state, tx.init(params), src.hidden_dim)
    return state.replace(**jax.tree.map(jax.numpy.asarray, dict(params=params, ema_params=ema,
                                                                 opt_state=opt)))


def widen_workdir(src: str, dst: str, hidden_dim: int | None = None,
                  flow_head_dim: int | None = None, seed: int = 0,
                  method: str = "fresh", noise: float = 0.0) -> tuple[int, ModelConfig]:
    """Writes the widened latest state of training workdir `src` as a new workdir `dst`.

    Returns:
      (step, the new ModelConfig). Raises ValueError (naming the path) on a workdir without a
      checkpoint, a narrowing, noise with `method` "fresh", or a destination that exists or
      overlaps the source.
    """
    import ml_collections

    from deq_flow_jax.io.common import atomic_write_json
    from deq_flow_jax.io.outputs import WORKDIR_MARKER, StagedDir, check_no_overlap
    from deq_flow_jax.model.forward import init_model
    from deq_flow_jax.train import checkpoint as ck
    from deq_flow_jax.train.config import model_config
    from deq_flow_jax.train.optim import make_optimizer
    from deq_flow_jax.train.state import create_train_state

    cfg_path = os.path.join(src, "config.json")
    if not os.path.isfile(cfg_path):
        raise ValueError(f"{src}: not a training workdir (no config.json)")
    with open(cfg_path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    manager = ck.make_manager(src, read_only=True)
    step = manager.latest_step()
    if step is None:
        raise ValueError(f"{src}: the workdir holds no checkpoint to widen")
    check_no_overlap(dst, "DST", [("the source workdir", src)])
    src_cfg = model_config(config)
    grow = {k: v for k, v in (("hidden_dim", hidden_dim), ("flow_head_dim", flow_head_dim))
            if v is not None}
    dst_cfg = dataclasses.replace(src_cfg, **grow)
    check_widening(src_cfg, dst_cfg)
    mw.check_method(method, noise)           # before the checkpoint is restored
    if dst_cfg == src_cfg:
        raise ValueError("nothing to widen: give a larger --hidden-dim or --flow-head-dim")

    tx, _ = make_optimizer(config)
    ema = float(config.get("ema_decay", 0.0)) > 0
    target = create_train_state(init_model(src_cfg, jax.random.PRNGKey(0)), tx, config.seed, ema)
    state, data_state, extra = ck.restore(manager, step, target)
    wide = widen_state(state, src_cfg, dst_cfg, tx, jax.random.PRNGKey(seed), method, noise)

    for k, v in grow.items():
        config.model[k] = v
    extra = dict(extra or {}, model_config=dst_cfg.to_dict(),
                 widened_from={"workdir": os.path.abspath(src), "step": int(step),
                               "model_config": src_cfg.to_dict(), "seed": int(seed),
                               "method": method, "noise": float(noise)})
    with StagedDir(dst, command="widen", flag="DST", marker=WORKDIR_MARKER) as stage:
        atomic_write_json(os.path.join(stage.path, "config.json"), config.to_dict(), indent=2,
                          sort_keys=True)
        atomic_write_json(os.path.join(stage.path, "model_config.json"), dst_cfg.to_dict(),
                          indent=2, sort_keys=True)
        out = ck.make_manager(stage.path)
        ck.save(out, int(step), wide, data_state, extra)
        out.close()
    return int(step), dst_cfg
