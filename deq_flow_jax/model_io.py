"""Saving and loading a model: an orbax checkpoint plus `model_config.json`.

    save_model("runs/B_init", variables, cfg)
    variables, cfg = load_model("runs/B_init")

Layout of `directory`: `model_config.json` (ModelConfig.to_dict() plus a format tag) and
`variables/` (orbax StandardCheckpointer of {"params", "batch_stats"}). This is what
`deq-flow convert` and `deq-flow init` write and what every command loads.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Tuple

import jax
import numpy as np

from deq_flow_jax.model.config import ModelConfig

CONFIG_NAME = "model_config.json"
VARIABLES_NAME = "variables"
FORMAT = "deq-flow-jax/model/v1"


def save_model(directory: str, variables: dict, cfg: ModelConfig) -> str:
    """Writes `variables` and `cfg` to `directory` (created; an existing model there is replaced).

    The checkpoint is written to a temporary sibling and renamed into place, so a crash never
    leaves a half-written model. Returns the absolute directory path.
    """
    import orbax.checkpoint as ocp
    directory = os.path.abspath(os.fspath(directory))
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp_" + os.path.basename(directory) + "_", dir=parent)
    try:
        state = jax.tree.map(np.asarray, {"params": variables["params"],
                                           "batch_stats": variables.get("batch_stats", {})})
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(os.path.join(tmp, VARIABLES_NAME), state)
            ckptr.wait_until_finished()
        with open(os.path.join(tmp, CONFIG_NAME), "w") as f:
            json.dump({"format": FORMAT, "model": cfg.to_dict()}, f, indent=2, sort_keys=True)
        if os.path.isdir(directory):
            old = directory + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(directory, old)
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_config(directory: str) -> ModelConfig:
    """Reads `directory/model_config.json`."""
    path = os.path.join(os.fspath(directory), CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_model: {path} not found (is {directory!r} a directory "
                                "written by save_model / `deq-flow convert` / `deq-flow init`?)")
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"load_model: {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or "model" not in data:
        raise ValueError(f"load_model: {path} lacks the 'model' entry")
    return ModelConfig.from_dict(data["model"])


def load_model(directory: str) -> Tuple[dict, ModelConfig]:
    """Returns (variables, cfg) saved by `save_model`."""
    import orbax.checkpoint as ocp
    from deq_flow_jax.model.deq_flow import init_variables
    cfg = load_config(directory)
    path = os.path.join(os.path.abspath(os.fspath(directory)), VARIABLES_NAME)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"load_model: checkpoint directory {path} not found")
    abstract = jax.eval_shape(lambda: init_variables(cfg, jax.random.PRNGKey(0), (64, 64)))
    with ocp.StandardCheckpointer() as ckptr:
        try:
            variables = ckptr.restore(path, abstract)
        except (ValueError, KeyError) as e:
            raise ValueError(f"load_model: checkpoint {path} does not match its "
                             f"model_config.json ({cfg.name}): {e}") from e
    return jax.tree.map(jax.numpy.asarray, variables), cfg
