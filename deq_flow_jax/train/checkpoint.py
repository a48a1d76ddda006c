"""Orbax checkpoints of a training workdir: latest + best-by-validation-EPE, exact resume.

Layout: `<workdir>/checkpoints/<step>/` with three items:
  * `state`: the `TrainState` (params, batch_stats, optimiser, step, rng, skipped counter);
  * `data`: the data iterator state (JSON), so a resumed run sees the same batches;
  * `extra`: JSON with the model config and whatever the loop adds.
Validation metrics are attached to checkpoints saved right after a validation; the
preservation policy keeps the latest checkpoint and the one with the lowest `epe`
(orbax writes into a temporary directory and renames it: a killed run never leaves a
half-written checkpoint). Each finished checkpoint gets a `SHA256SUMS` of its files.

This module holds the train state only (save, exact resume); reading a model out of a
workdir for inference is `deq_flow_jax.checkpoints.load(workdir, which)`.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from deq_flow_jax.train.parallel import allgather_bytes
from deq_flow_jax.train.state import has_ema

CHECKPOINT_DIR = "checkpoints"


def _epe(metrics) -> float:
    return float(metrics["epe"])


def make_manager(workdir: str, *, read_only: bool = False) -> ocp.CheckpointManager:
    """A CheckpointManager keeping the latest checkpoint and the best one by val EPE."""
    directory = os.path.join(os.path.abspath(os.path.expanduser(workdir)), CHECKPOINT_DIR)
    policy = pp.AnyPreservationPolicy([
        pp.LatestN(n=1),
        pp.BestN(get_metric_fn=_epe, reverse=True, n=1, keep_checkpoints_without_metrics=False),
    ])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, best_fn=_epe, best_mode="min",   # best_fn: metrics get written
        enable_async_checkpointing=False, read_only=read_only,
        create=not read_only)
    handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler(),
                "extra": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def encode_iterator_state(state: Any) -> dict:
    """JSON-safe form of every process's grain iterator state (bytes or JSON-able).

    Collective: all processes call it; the result lists the states in process order (only
    the primary process writes JSON items, so each process's position must be in it).
    """
    if isinstance(state, (bytes, bytearray)):
        kind, blob = "bytes", bytes(state)
    else:
        kind, blob = "json", json.dumps(state).encode()
    blobs = allgather_bytes(blob)
    return {"kind": kind, "per_process": [base64.b64encode(b).decode("ascii") for b in blobs]}


def decode_iterator_state(blob: dict) -> Any:
    """This process's iterator state from `encode_iterator_state`'s record."""
    states = blob["per_process"]
    if len(states) != jax.process_count():
        raise ValueError(f"checkpoint holds data iterator states of {len(states)} processes, "
                         f"this run has {jax.process_count()}; resume with the same process count")
    raw = base64.b64decode(states[jax.process_index()])
    return raw if blob["kind"] == "bytes" else json.loads(raw.decode())


def save(manager: ocp.CheckpointManager, step: int, state, data_state: Any, extra: dict,
         metrics: dict | None = None) -> None:
    """Saves (blocking) the train state, the iterator state and `extra` at `step`."""
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(encode_iterator_state(data_state)),
        extra=ocp.args.JsonSave(extra),
    )
    manager.save(step, args=args, metrics=metrics, force=True)
    manager.wait_until_finished()
    if jax.process_index() == 0:
        write_step_manifest(step_directory(manager, step))


def step_directory(manager: ocp.CheckpointManager, step: int) -> str:
    """`<workdir>/checkpoints/<step>`."""
    return os.path.join(os.fspath(manager.directory), str(step))


def write_step_manifest(step_dir: str) -> None:
    """Checksums of every file of a finished checkpoint in `<step>/SHA256SUMS`, verified by
    `deq_flow_jax.checkpoints.load` (orbax does not detect every changed byte)."""
    from deq_flow_jax import model_io
    names = [os.path.relpath(os.path.join(d, f), step_dir)
             for d, _, files in os.walk(step_dir) for f in files]
    model_io.write_manifest(step_dir, [n for n in names if n != model_io.MANIFEST_NAME])


def restore(manager: ocp.CheckpointManager, step: int, state_target):
    """Restores (state, iterator state, extra) at `step` onto `state_target`'s structure and
    shardings (a TrainState of arrays or of jax.ShapeDtypeStruct), after checking the step's
    SHA256SUMS (model_io.CheckpointError naming a changed file)."""
    from deq_flow_jax import model_io
    step_dir = step_directory(manager, step)
    if os.path.isfile(os.path.join(step_dir, model_io.MANIFEST_NAME)):   # older runs have none
        model_io.verify_manifest(step_dir, required=())
    # The fields the checkpoint holds: a run may add or drop the EMA (config.ema_decay)
    # when it resumes, and checkpoints from before the EMA existed have no `ema_params`.
    tree = getattr(manager.item_metadata(step)["state"], "tree", None) or {}
    fields = {f.name: getattr(state_target, f.name) for f in dataclasses.fields(state_target)}
    want_ema = has_ema(state_target)
    target = {k: v for k, v in fields.items() if k in tree and k != "ema_params"}
    if "ema_params" in tree:        # read in the layout of params (or empty), dropped if unwanted
        target["ema_params"] = fields["params"] if jax.tree.leaves(tree["ema_params"]) else {}
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    out = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore(),
        extra=ocp.args.JsonRestore()))
    restored = dict(out.state)
    for k, v in fields.items():     # empty fields ({} batch_stats) may be absent from a checkpoint
        if k not in restored and k != "ema_params" and not jax.tree.leaves(v):
            restored[k] = v
    missing = set(fields) - set(restored) - {"ema_params"}
    if missing:
        raise ValueError(f"{step_dir}: the checkpoint lacks {sorted(missing)}")
    if not want_ema:
        restored["ema_params"] = {}
    elif not jax.tree.leaves(restored.get("ema_params", {})):   # the EMA starts at this step
        restored["ema_params"] = jax.tree.map(jnp.copy, restored["params"])
    return type(state_target)(**restored), decode_iterator_state(out.data), out.extra


def best_step(manager: ocp.CheckpointManager) -> int | None:
    """The kept step with the lowest validation EPE (None if none has metrics)."""
    best = None
    for step in manager.all_steps():
        m = manager.metrics(step)
        if m and "epe" in m and (best is None or float(m["epe"]) < best[0]):
            best = (float(m["epe"]), step)
    return None if best is None else best[1]

