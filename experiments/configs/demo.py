"""`make demo` config: `experiments/configs/synthetic.py` tuned for a few CPU minutes.

`deq-flow demo --workdir runs/demo` trains with this config; any key can be overridden,
e.g. `deq-flow demo --workdir runs/demo --config.num_steps=100`. The values below were
tuned on a shared 2-core CPU so that training takes about 3-4 minutes and the validation
EPE ends well below the zero-flow EPE (numbers in docs/demo.md).
"""
from __future__ import annotations

import importlib.util
import os

import ml_collections

_HERE = os.path.dirname(os.path.abspath(__file__))


def _synthetic_config() -> ml_collections.ConfigDict:
    path = os.path.join(_HERE, "synthetic.py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"demo config: base config {path} not found")
    spec = importlib.util.spec_from_file_location("_deq_flow_stage_config_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config() -> ml_collections.ConfigDict:
    """The synthetic config with the demo's step budget, learning rate and logging cadence."""
    config = _synthetic_config()
    config.model.variant = "tiny"
    config.num_steps = 600
    config.log_every = 20
    config.eval_every = 200
    config.checkpoint_every = 200
    return config
