"""One checkpoint API: load a model from wherever it lives, save one safely.

    variables, cfg, deq = checkpoints.load("runs/B_init")          # a model directory
    variables, cfg, deq = checkpoints.load("runs/chairs", "latest") # a training workdir
    variables, cfg, deq = checkpoints.load()                       # the shipped pretrained model
    checkpoints.save("runs/mine", variables, cfg, deq)             # a model directory

Sources:
  * a model directory (`deq_flow_jax.model_io`: what `deq-flow init` / `convert` and
    `save` write, and what `deq_flow_jax/pretrained/NAME/` holds): checksums verified;
  * a training workdir (`deq-flow train`): its best (lowest validation EPE; the latest when
    none has validation metrics) or latest orbax checkpoint;
  * None: the default shipped pretrained model (`deq_flow_jax.pretrained`).

Whatever the source, the weights are checked against the stored ModelConfig (every
parameter present with the expected shape, nothing extra, all finite) before they are
returned: a checkpoint that does not fit its config is one error naming the checkpoint and
the first mismatch, never a flax traceback or NaN flow later.

`deq` is the DEQConfig stored with the weights (None when the source has none: random
init, converted official weights). `evaluation_deq(deq)` gives the solver settings to
evaluate with, and the one default evaluation budget is `evaluation_deq(deq).eval_max_steps`
= f_max_steps * eval_factor of the stored config, else of `FALLBACK_DEQ` (the official
evaluation, 40 * 1.5 = 60 steps).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys

import numpy as np

from deq_flow_jax import model_io
from deq_flow_jax.model.config import DEQConfig, ModelConfig

# The solver settings used when a checkpoint stores none: the official evaluation
# (anderson, f_thres 40 x eval_factor 1.5 = 60 steps, tol 1e-3 on the absolute residual).
FALLBACK_DEQ = DEQConfig(f_solver="anderson", f_max_steps=40, f_tol=1e-3, f_stop_mode="abs",
                         eval_factor=1.5)


CheckpointError = model_io.CheckpointError


def evaluation_deq(deq: DEQConfig | None) -> DEQConfig:
    """The solver settings to evaluate a checkpoint with: its stored DEQConfig, else FALLBACK_DEQ.

    Evaluation runs `f_solver` for `eval_max_steps` = int(f_max_steps * eval_factor) steps
    with tolerance `f_tol` on the `f_stop_mode` residual.
    """
    return FALLBACK_DEQ if deq is None else deq


def kind(path: str) -> str:
    """"model" (a model directory) or "workdir" (a training workdir); raises FileNotFoundError."""
    from deq_flow_jax.train.checkpoint import CHECKPOINT_DIR

    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "no such directory"
        raise FileNotFoundError(f"{path}: {what} (expected a model directory, or a training "
                                f"workdir with {CHECKPOINT_DIR}/)")
    if os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):  # a workdir has model_config.json too
        return "workdir"
    if os.path.isfile(os.path.join(path, model_io.CONFIG_NAME)):
        return "model"
    raise FileNotFoundError(
        f"{path}: neither a model directory (no {model_io.CONFIG_NAME}; written by "
        f"`deq-flow init` / `deq-flow convert`) nor a training workdir (no {CHECKPOINT_DIR}/; "
        "written by `deq-flow train`)")


def load(path: str | None = None, which: str = "best"
         ) -> tuple[dict, ModelConfig, DEQConfig | None]:
    """Loads a model: (variables, ModelConfig, DEQConfig or None).

    Args:
      path: a model directory, a training workdir, or None for the default shipped
        pretrained model.
      which: for a training workdir, "best" (lowest validation EPE; the latest when no
        checkpoint has validation metrics) or "latest". Ignored otherwise.

    Returns:
      variables {"params", "batch_stats"} of jax arrays (float32; conv kernels HWIO for NHWC),
      the ModelConfig, and the stored DEQConfig (None when the source stores none).

    Raises:
      FileNotFoundError: nothing usable at `path`.
      CheckpointError (a ValueError): corrupt weights or weights not fitting the config; the
        message is one line naming the file.
    """
    import jax.numpy as jnp

    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    if path is None:
        from deq_flow_jax import pretrained
        return pretrained.load()
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if kind(path) == "model":
        variables, cfg, deq, source = _read_model_dir(path)
    else:
        variables, cfg, deq, source = _read_workdir(path, which)
    check_variables(variables, cfg, source)
    return {k: _map(jnp.asarray, v) for k, v in variables.items()}, cfg, deq


def describe(path: str | None = None, which: str = "best"
             ) -> tuple[ModelConfig, DEQConfig | None]:
    """(ModelConfig, DEQConfig or None) of a checkpoint, without reading its weights."""
    if path is None:
        from deq_flow_jax import pretrained
        path = pretrained.path()
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if kind(path) == "model":
        return model_io.read_config(path)[:2]
    manager, step, step_dir = _workdir_step(path, which)
    import orbax.checkpoint as ocp
    with quiet_orbax():
        try:
            extra = manager.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore())).extra
        except Exception as e:  # noqa: BLE001 - reported as one line naming the file
            raise CheckpointError(f"{step_dir}: cannot be read ({_first_line(e)})") from None
    return _configs_from_extra(extra, step_dir)


def inference(path: str | None = None) -> dict:
    """How the model at `path` is meant to be run beyond its solver: a model directory's
    "inference" entry (`model_io.read_inference`, e.g. {"refine": "variational"} for the
    shipped deq-flow-s-cpu), {} for a training workdir or a directory without one; None: the
    default shipped pretrained model."""
    if path is None:
        from deq_flow_jax import pretrained
        path = pretrained.path()
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    return model_io.read_inference(path) if kind(path) == "model" else {}


def workdir_checkpoint(workdir: str, which: str = "best") -> tuple[int, dict | None]:
    """(step, its validation metrics or None) of the checkpoint `load(workdir, which)` reads."""
    manager, step, _ = _workdir_step(os.path.abspath(os.path.expanduser(workdir)), which)
    with quiet_orbax():
        metrics = manager.metrics(step)
    return step, (dict(metrics) if metrics else None)


def save(directory: str, variables: dict, cfg: ModelConfig, deq: DEQConfig | None = None,
         *, overwrite: bool = False, card: str | None = None,
         inference: dict | None = None) -> str:
    """Writes a model directory (see `deq_flow_jax.model_io`); returns its absolute path.

    The weights are checked against `cfg` first; `inference` is the optional "inference"
    entry (`model_io.read_inference`). `directory` must not exist, be empty, or
    (with `overwrite`) hold a model written by this package and nothing else; anything else
    is refused (CheckpointError, a ValueError) and left untouched.
    """
    variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats") or {}}
    check_variables(variables, cfg, "the weights to save")
    return model_io.write_model_dir(directory, variables, cfg, deq, overwrite=overwrite, card=card,
                                    inference=inference)


# ----------------------------------------------------------------------------- checks

@functools.lru_cache(maxsize=8)
def abstract_variables(cfg: ModelConfig) -> dict:
    """{"params", "batch_stats"} as jax.ShapeDtypeStruct trees: what `cfg` expects."""
    import jax

    from deq_flow_jax.model.deq_flow import init_variables
    out = jax.eval_shape(lambda: init_variables(cfg, jax.random.PRNGKey(0), (64, 64)))
    out = dict(out)
    out.setdefault("batch_stats", {})
    return {"params": out["params"], "batch_stats": out["batch_stats"]}


def _flat(tree, prefix=()) -> dict:
    if isinstance(tree, dict) or hasattr(tree, "items"):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, prefix + (str(k),)))
        return out
    return {prefix: tree}


def check_variables(variables: dict, cfg: ModelConfig, source: str) -> None:
    """Raises CheckpointError unless `variables` has exactly `cfg`'s parameters, shapes, and
    finite float values; the message names `source` and the first mismatch."""
    want = _flat(abstract_variables(cfg))
    got = _flat({"params": variables.get("params", {}),
                 "batch_stats": variables.get("batch_stats") or {}})
    name = lambda key: "/".join(key)
    for key in sorted(want):
        if key not in got:
            raise CheckpointError(f"{source}: does not fit its config (variant {cfg.name}): "
                                  f"parameter {name(key)} is missing")
        shape = tuple(np.shape(got[key]))
        if shape != tuple(want[key].shape):
            raise CheckpointError(f"{source}: does not fit its config (variant {cfg.name}): "
                                  f"{name(key)} has shape {shape}, the config expects "
                                  f"{tuple(want[key].shape)}")
    extra = sorted(set(got) - set(want))
    if extra:
        raise CheckpointError(f"{source}: does not fit its config (variant {cfg.name}): "
                              f"unexpected parameter {name(extra[0])}")
    for key in sorted(got):
        value = np.asarray(got[key])
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"{source}: {name(key)} has dtype {value.dtype}, expected float")
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{source}: {name(key)} holds non-finite values (NaN or inf); "
                                  "the checkpoint is corrupt")


def _map(fn, tree):
    import jax
    return jax.tree.map(fn, tree)


def _first_line(e: BaseException) -> str:
    """The exception's first sentence, for a one-line message (TensorStore's are long)."""
    text = str(e).strip().splitlines()
    first = text[0].split(". See full")[0][:160] if text else ""
    return type(e).__name__ + (f": {first}" if first else "")


def _is_late_tensorstore_callback(unraisable) -> bool:
    """True for the "Event loop is closed" RuntimeError that `asyncio`'s
    `call_soon_threadsafe` raises when a TensorStore read finishes after the event loop
    orbax awaited it on was closed (orbax closes it as soon as one read of a restore fails;
    the others complete later, on TensorStore's threads, and report to `sys.unraisablehook`)."""
    err = unraisable.exc_value
    if not (isinstance(err, RuntimeError) and str(err) == "Event loop is closed"):
        return False
    tb = unraisable.exc_traceback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
            return True
        tb = tb.tb_next
    return False


def drop_late_tensorstore_callbacks() -> None:
    """Installs (once per process) a `sys.unraisablehook` that drops the stray traceback of
    a TensorStore read completing after orbax's event loop closed (see
    `_is_late_tensorstore_callback`); every other unraisable error goes to the hook that was
    installed before. Without it a failed restore's one-line error can be preceded, at a
    random moment, by an "Event loop is closed" traceback from a background thread."""
    previous = sys.unraisablehook
    if getattr(previous, "_deq_flow_drops_late_callbacks", False):
        return

    def hook(unraisable):
        if not _is_late_tensorstore_callback(unraisable):
            previous(unraisable)

    hook._deq_flow_drops_late_callbacks = True
    sys.unraisablehook = hook


@contextlib.contextmanager
def quiet_orbax():
    """Silences orbax/absl/asyncio error logging while a read is attempted: a failed read is
    reported once, by the caller, as one line naming the checkpoint. Also installs
    `drop_late_tensorstore_callbacks` (for the rest of the process: the stray reports come
    after the read has failed and returned)."""
    drop_late_tensorstore_callbacks()
    names = ("absl", "orbax", "asyncio", "jax", "tensorstore")
    loggers = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# ----------------------------------------------------------------------------- sources

def _read_model_dir(path: str):
    cfg, _, fmt = model_io.read_config(path)
    abstract = abstract_variables(cfg) if fmt in model_io.LEGACY_FORMATS else None
    variables, cfg, deq = model_io.read_model_dir(path, abstract)
    source = os.path.join(path, model_io.WEIGHTS_NAME if fmt == model_io.FORMAT
                          else model_io.LEGACY_VARIABLES_NAME)
    return variables, cfg, deq, f"{source} (config {os.path.join(path, model_io.CONFIG_NAME)})"


def _workdir_step(workdir: str, which: str):
    from deq_flow_jax.train import checkpoint as ck
    with quiet_orbax():                  # no "read_only=True" warnings on stderr
        manager = ck.make_manager(workdir, read_only=True)
    step = ck.best_step(manager) if which == "best" else None
    step = manager.latest_step() if step is None else step
    ckdir = os.path.join(workdir, ck.CHECKPOINT_DIR)
    if step is None:
        raise FileNotFoundError(f"{ckdir}: no checkpoint found")
    return manager, step, os.path.join(ckdir, str(step))


def _configs_from_extra(extra, step_dir: str):
    try:
        cfg = ModelConfig.from_dict(extra["model_config"])
        deq = DEQConfig.from_dict(extra["deq_config"]) if extra.get("deq_config") else None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{step_dir}: its 'extra' item holds no valid model config "
                              f"({_first_line(e)})") from None
    return cfg, deq


def _read_workdir(workdir: str, which: str):
    """Restores the model part of a training checkpoint onto this process's first device,
    whatever topology saved it (e.g. 2 hosts)."""
    manager, step, step_dir = _workdir_step(workdir, which)
    try:
        return _restore_model(manager, step, step_dir)
    finally:
        manager.close()            # waits for orbax's background work before returning


def _restore_model(manager, step: int, step_dir: str):
    import jax
    import orbax.checkpoint as ocp

    if os.path.isfile(os.path.join(step_dir, model_io.MANIFEST_NAME)):   # older runs have none
        model_io.verify_manifest(step_dir, required=())
    with quiet_orbax():
        try:
            meta = manager.item_metadata(step)["state"]
            meta = getattr(meta, "tree", meta)
            device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            target = jax.tree.map(
                lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype, sharding=device), meta,
                is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))
            out = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), extra=ocp.args.JsonRestore()))
        except Exception as e:  # noqa: BLE001 - reported as one line naming the file
            raise CheckpointError(f"{step_dir}: cannot be restored; the checkpoint is "
                                  f"incomplete or corrupt ({_first_line(e)})") from None
    cfg, deq = _configs_from_extra(out.extra, step_dir)
    raw = _map(np.asarray, out.state)
    # A run with config.ema_decay > 0 validated (and chose its best step by) the EMA weights.
    params = raw["ema_params"] if raw.get("ema_params") else raw["params"]
    variables = {"params": params, "batch_stats": raw.get("batch_stats") or {}}
    return variables, cfg, deq, step_dir
