"""`train_and_evaluate(config, workdir)`: the training loop (contract 5 in docs/DESIGN.md).

Resumes from the latest checkpoint in `workdir` (state, RNG, data iterator), trains with
the shard_map step over all devices, logs to `train.jsonl` / TensorBoard / a tqdm bar,
validates every `eval_every` steps and checkpoints every `checkpoint_every` steps and at
the end (latest + best by validation EPE kept).
"""
from __future__ import annotations

import os
import time
from collections import defaultdict

import jax
import numpy as np
from tqdm import tqdm

from deq_flow_jax.train import checkpoint as ck
from deq_flow_jax.train.config import check_config, deq_config, extra_validations, model_config, validation_source
from deq_flow_jax.train.logging import JSONL, MetricLogger, truncate_jsonl
from deq_flow_jax.train.objective import make_flow_loss_fn
from deq_flow_jax.train.optim import make_optimizer
from deq_flow_jax.train.parallel import check_batch_size, make_mesh, replicate, shard_batch, to_host
from deq_flow_jax.train.state import create_train_state, state_variables
from deq_flow_jax.train.step import make_train_step
from deq_flow_jax.train.validate import validate

TRAIN_KEYS = ("loss", "epe", "lr", "grad_norm", "f_nstep", "f_abs", "f_rel", "b_nstep", "b_abs",
              "b_rel")


def _write_json_atomic(path: str, obj) -> None:
    from deq_flow_jax.io.common import atomic_write_json
    atomic_write_json(path, obj, indent=2, sort_keys=True)


def _initial_variables(config, mcfg):
    """Random weights, or those of `config.init_from` (a model directory or the best
    checkpoint of an earlier stage's workdir), which must have the same architecture."""
    from deq_flow_jax.model import init_model
    if config.init_from:
        from deq_flow_jax import checkpoints
        variables, src_cfg, _ = checkpoints.load(config.init_from, "best")
        if src_cfg != mcfg:
            raise ValueError(f"config.init_from={config.init_from!r} holds a {src_cfg.name} model "
                             f"({src_cfg}), but the config asks for {mcfg}")
        return variables
    return init_model(mcfg, jax.random.PRNGKey(config.seed), tuple(config.data.crop_size))


def _check_same_model(workdir: str, mcfg) -> None:
    """Refuses to resume a workdir whose checkpoints hold another architecture (before its
    model_config.json is rewritten); remat and compute_dtype may change between runs."""
    from deq_flow_jax.model import ModelConfig
    path = os.path.join(workdir, "model_config.json")
    ckdir = os.path.join(workdir, ck.CHECKPOINT_DIR)
    if not (os.path.isfile(path) and os.path.isdir(ckdir)
            and any(n.isdigit() for n in os.listdir(ckdir))):
        return
    import dataclasses
    import json
    with open(path) as f:
        held = ModelConfig.from_dict(json.load(f))
    diffs = [f"{k.name} {getattr(held, k.name)!r} (the config asks for {getattr(mcfg, k.name)!r})"
             for k in dataclasses.fields(ModelConfig)
             if k.name not in ("name", "remat", "compute_dtype")
             and getattr(held, k.name) != getattr(mcfg, k.name)]
    if diffs:
        raise ValueError(f"{workdir}: --workdir holds checkpoints of another model: "
                         f"{'; '.join(diffs)}; resume with the same --config.model.* settings "
                         "or choose a new workdir")


class _StepVariants:
    """Compiled step variants: (jacobian term?, spectral radius?) -> jitted step.

    Two (or four) separately compiled programs instead of `lax.cond`: the Jacobian term and
    the power iteration are static arguments of `model_forward`, and a cond would make every
    step carry the memory of the most expensive branch; here a step without them compiles and
    runs exactly as if the feature did not exist, and each variant compiles once.
    """

    def __init__(self, config, mcfg, dcfg, tx, schedule, mesh):
        self.config, self.mcfg, self.dcfg = config, mcfg, dcfg
        self.tx, self.schedule, self.mesh = tx, schedule, mesh
        self._fns = {}

    def __call__(self, step: int):
        c = self.config
        jac = c.jac_weight > 0 and step % max(c.jac_every, 1) == 0
        sr = c.sradius_every > 0 and step % c.sradius_every == 0
        if (jac, sr) not in self._fns:
            loss_fn = make_flow_loss_fn(
                self.mcfg, self.dcfg, gamma=c.gamma, add_noise=c.add_noise,
                boundary_weight=float(c.get("boundary_weight", 0.0)),
                boundary_threshold=float(c.get("boundary_threshold", 1.0)),
                boundary_radius=int(c.get("boundary_radius", 2)),
                loss_margin=float(c.get("loss_margin", 0.0)),
                bn_train=not c.freeze_bn, jac_weight=c.jac_weight if jac else 0.0,
                jac_probes=c.jac_probes if jac else 0, sradius_iters=c.sradius_iters if sr else 0)
            self._fns[(jac, sr)] = make_train_step(loss_fn, self.tx, self.schedule, self.mesh,
                                                   ema_decay=float(c.get("ema_decay", 0.0)))
        return self._fns[(jac, sr)]


def _flow_panels(panels):
    """(image1 | predicted flow | ground truth) uint8 strips, flow colours share one scale."""
    from deq_flow_jax.evaluate.flow_colors import flow_to_color
    out = []
    for image1, pred, gt in panels:
        scale = float(np.max(np.sqrt(np.sum(gt ** 2, -1)))) or 1.0
        out.append(np.concatenate([np.asarray(image1, np.uint8),
                                   np.asarray(flow_to_color(pred, max_flow=scale)),
                                   np.asarray(flow_to_color(gt, max_flow=scale))], axis=1))
    return np.stack(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains (or resumes) a DEQ-Flow model; returns the final validation metrics.

    Args:
      config: ml_collections ConfigDict (deq_flow_jax/configs/*.py, contract 5).
      workdir: output directory: config.json, model_config.json, checkpoints/, train.jsonl, tb/.

    Returns:
      dict of the last validation's metrics (epe, 1px, 3px, 5px, fl_all, zero_epe, f_nstep,
      ...; see `train.validate`) plus "step".
    """
    from deq_flow_jax.data.pipeline import iterator_state_for, make_train_loader
    check_config(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    is_main = jax.process_index() == 0
    # Everything that can refuse the config or its inputs (the workdir's owner, the model, the
    # batch, an initial checkpoint, a dataset that is not prepared) runs before the workdir is
    # created or written: a refused run leaves no config.json behind.
    from deq_flow_jax.io.outputs import check_workdir, claim_workdir, overlap
    data_dir = os.path.expanduser(config.data.data_dir)
    if is_main:   # new, empty or deq-flow's own: never config.json / train.jsonl over a user's files
        check_workdir(workdir)

    def claim():   # the main process marks the workdir as deq-flow's; the others only need it
        if is_main:
            claim_workdir(workdir, "train")
        else:
            os.makedirs(workdir, exist_ok=True)
    if overlap(workdir, data_dir) in ("is", "contains"):   # data built inside the workdir:
        claim()                                            # claim it first
    mcfg, dcfg = model_config(config), deq_config(config)
    _check_same_model(workdir, mcfg)

    mesh = make_mesh()
    check_batch_size(config.batch_size, mesh)
    if config.batch_size % jax.process_count():
        raise ValueError(f"config.batch_size={config.batch_size} must be a multiple of the "
                         f"number of processes ({jax.process_count()})")
    tx, schedule = make_optimizer(config)
    state = replicate(create_train_state(_initial_variables(config, mcfg), tx, config.seed,
                                         ema=float(config.get("ema_decay", 0.0)) > 0), mesh)

    synthetic_kw = dict(config.data.get("synthetic", None) or {})
    layered_kw = dict(config.data.get("layered", None) or {})   # rendered 'layered' data
    loader = make_train_loader(
        config.data.stage, data_dir=data_dir, crop_size=tuple(config.data.crop_size),
        global_batch_size=config.batch_size, seed=config.seed,
        num_workers=config.data.num_workers, process_index=jax.process_index(),
        process_count=jax.process_count(), synthetic=synthetic_kw or None,
        layered=layered_kw or None, aug=None if config.data.get("augment", True) else False)
    val_source = validation_source(config.data)
    extra_sources = [(name, n, validation_source(config.data, name, split))
                     for name, split, n in extra_validations(config.data)]
    claim()
    if is_main:
        _write_json_atomic(os.path.join(workdir, "config.json"), config.to_dict())
        _write_json_atomic(os.path.join(workdir, "model_config.json"), mcfg.to_dict())

    data_iter = iter(loader)   # after the claim: its worker processes start here
    manager = ck.make_manager(workdir)
    start = 0
    latest = manager.latest_step()
    if latest is not None:
        state, data_state, _ = ck.restore(manager, latest, state)
        data_iter.set_state(iterator_state_for(data_state, config.data.num_workers))
        start = int(to_host(state.step))
        if is_main:
            truncate_jsonl(os.path.join(workdir, JSONL), start)
        print(f"resumed from step {start}", flush=True)
    logger = MetricLogger(workdir, enabled=is_main)
    steps = _StepVariants(config, mcfg, dcfg, tx, schedule, mesh)
    extra = {"model_config": mcfg.to_dict(), "deq_config": dcfg.to_dict()}

    def run_validation(step):
        variables = to_host(state_variables(state))
        metrics, panels = validate(variables, mcfg, dcfg, val_source,
                                   dataset=config.data.val_dataset,
                                   max_examples=config.data.val_max_examples,
                                   num_images=config.num_val_images)
        line = logger.write(step, "val", metrics)
        if panels and is_main:
            logger.images(step, "val/flow", _flow_panels(panels))
        for name, n, source in extra_sources:       # config.data.extra_val: logged, not "best"
            extra_metrics, _ = validate(variables, mcfg, dcfg, source, dataset=name,
                                        max_examples=n, num_images=0)
            logger.write(step, f"val/{name}", extra_metrics)
        logger.flush()
        return line

    acc, n_acc, t0 = defaultdict(float), defaultdict(int), time.time()
    last_val = None
    bar = tqdm(total=config.num_steps, initial=start, disable=not is_main, desc="train",
               dynamic_ncols=True, mininterval=1.0)
    for step in range(start, config.num_steps):
        batch = shard_batch(next(data_iter), mesh)
        state, metrics = steps(step)(state, batch)
        metrics = jax.device_get(metrics)   # blocks: avoids the fake-CPU collective deadlock
        for k, v in metrics.items():
            acc[k] += float(v)
            n_acc[k] += 1
        s = step + 1
        bar.update(1)
        if float(metrics["finite"]) == 0.0:
            tqdm.write(f"step {s}: non-finite gradient, update skipped "
                       f"({int(to_host(state.skipped))} so far)")
        if s % config.log_every == 0 or s == config.num_steps:
            rate = n_acc["loss"] / max(time.time() - t0, 1e-9)
            line = {k: acc[k] / n_acc[k] for k in acc if k in TRAIN_KEYS}
            for k in ("jac_loss", "sradius"):
                if n_acc.get(k):
                    line[k] = acc[k] / n_acc[k]
            line.update(skipped=int(to_host(state.skipped)), steps_per_s=rate)
            logger.write(s, "train", line)
            bar.set_postfix(loss=f"{line['loss']:.3f}", epe=f"{line['epe']:.2f}")
            acc, n_acc, t0 = defaultdict(float), defaultdict(int), time.time()
        val = None
        if s % config.eval_every == 0 or s == config.num_steps:
            val = last_val = run_validation(s)
            tqdm.write(f"step {s}: val epe {val['epe']:.3f} (zero flow {val['zero_epe']:.3f})")
        if s % config.checkpoint_every == 0 or s == config.num_steps or val is not None:
            ck.save(manager, s, state, data_iter.get_state(), extra,
                    metrics=None if val is None else {"epe": float(val["epe"])})
    bar.close()
    if last_val is None:       # resumed a finished run: report the current weights
        last_val = run_validation(int(to_host(state.step)))
    logger.close()
    manager.close()
    return dict(last_val)
