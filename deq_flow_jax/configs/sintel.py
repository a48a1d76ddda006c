"""Stage 3, the Sintel mixture (100x Sintel clean + 100x final + 200x KITTI + 5x HD1K +
Things), from the Things weights: 120k steps, batch 6, lr 1.25e-4, 368x768, wd 1e-5,
gamma 0.9, batch norm frozen.

    deq-flow train --config deq_flow_jax/configs/sintel.py:H --workdir runs/sintel-H \
        --config.init_from=runs/things-H
"""
from deq_flow_jax.configs.things import get_config as things_config


def get_config(arg: str | None = None):
    c = things_config(arg)
    c.weight_decay = 1e-5
    c.gamma = 0.9
    c.data.stage = "sintel"
    c.data.crop_size = (368, 768)
    c.data.val_dataset, c.data.val_split = "sintel_final", "training"
    return c
