"""Stage 1, FlyingChairs: 120k steps, batch 12, lr 4e-4, 368x496, wd 1e-4, 36 solver steps,
6 correction terms with 1 phantom step each, batch norm trained.

    deq-flow train --config deq_flow_jax/configs/chairs.py:H --workdir runs/chairs-H
"""
from deq_flow_jax.configs.common import base_config


def get_config(arg: str | None = None):
    c = base_config(arg or "B")
    c.data.stage = "chairs"
    c.data.val_dataset, c.data.val_split = "chairs", "validation"
    return c
