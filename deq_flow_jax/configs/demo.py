"""`make demo` config: `deq_flow_jax/configs/synthetic.py` tuned for a few CPU minutes.

`deq-flow demo --workdir runs/demo` trains with this config; any key can be overridden,
e.g. `deq-flow demo --workdir runs/demo --config.num_steps=100`. The values below were
tuned on a shared 2-core CPU so that training takes about 3-4 minutes and the validation
EPE ends well below the zero-flow EPE (numbers in docs/demo.md).
"""
from __future__ import annotations

import ml_collections

from deq_flow_jax.configs.synthetic import get_config as synthetic_config


def get_config() -> ml_collections.ConfigDict:
    """The synthetic config with the demo's step budget, learning rate and logging cadence."""
    config = synthetic_config()
    config.model.variant = "tiny"
    config.num_steps = 400
    config.lr = 1e-3                 # 4e-4 (the stage default) learns too slowly for minutes
    config.deq.f_max_steps = config.deq.b_max_steps = 8
    config.deq.n_losses = 2
    config.data.val_max_examples = 32
    config.log_every = 10
    config.eval_every = 100
    config.checkpoint_every = 100
    return config
