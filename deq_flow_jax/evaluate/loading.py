"""Loading a model for evaluation from either a model directory or a training workdir.

* a model directory (`deq_flow_jax.model_io.save_model`, what `deq-flow init` and
  `deq-flow convert` write) holds `model_config.json`;
* a training workdir (`deq-flow train`) holds `checkpoints/`; its best (lowest
  validation EPE) or latest checkpoint is loaded.
"""
from __future__ import annotations

import os


def checkpoint_kind(path: str) -> str:
    """"model" or "workdir"; raises FileNotFoundError naming what is missing."""
    from deq_flow_jax import model_io

    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--checkpoint {path}: no such directory")
    if os.path.isdir(os.path.join(path, "checkpoints")):   # a workdir has model_config.json too
        return "workdir"
    if os.path.isfile(os.path.join(path, model_io.CONFIG_NAME)):
        return "model"
    raise FileNotFoundError(
        f"--checkpoint {path}: neither a model directory (no {model_io.CONFIG_NAME}; written by "
        "`deq-flow init` / `deq-flow convert`) nor a training workdir (no checkpoints/; written "
        "by `deq-flow train`)")


def load_any(path: str, which: str = "best"):
    """(variables, cfg) from a model directory or a training workdir.

    Args:
        path: the directory.
        which: for a workdir, "best" or "latest" checkpoint.
    """
    import jax

    kind = checkpoint_kind(path)
    path = os.path.expanduser(os.fspath(path))
    if kind == "model":
        from deq_flow_jax.model_io import load_model

        variables, cfg = load_model(path)
    else:
        from deq_flow_jax.train.checkpoint import load_model_from_workdir

        variables, cfg = load_model_from_workdir(path, which)
    variables = dict(variables)
    variables.setdefault("batch_stats", {})
    return jax.tree_util.tree_map(jax.numpy.asarray, variables), cfg


def training_solver_defaults(path: str) -> dict:
    """The solver settings a training workdir was trained with, from its config.json
    ({"f_solver", "f_max_steps", "f_tol", "f_stop_mode", "eval_factor"} found there); {} otherwise."""
    import json

    cfg_path = os.path.join(os.path.expanduser(os.fspath(path)), "config.json")
    if not os.path.isfile(cfg_path):
        return {}
    try:
        with open(cfg_path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    found = {}

    def walk(d):
        if isinstance(d, dict):
            for k, v in d.items():
                if k in ("f_solver", "f_max_steps", "f_tol", "f_stop_mode", "eval_factor") \
                        and not isinstance(v, (dict, list)):
                    found.setdefault(k, v)
                walk(v)
    walk(data)
    return found
