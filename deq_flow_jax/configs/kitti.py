"""Stage 4, KITTI 2015 training, from the Sintel weights: 50k steps, batch 6, lr 1e-4,
288x960, wd 1e-5, gamma 0.9, batch norm frozen.

    deq-flow train --config deq_flow_jax/configs/kitti.py:H --workdir runs/kitti-H \
        --config.init_from=runs/sintel-H
"""
from deq_flow_jax.configs.things import get_config as things_config


def get_config(arg: str | None = None):
    c = things_config(arg)
    c.num_steps = 50_000
    c.lr = 1e-4
    c.weight_decay = 1e-5
    c.gamma = 0.9
    c.data.stage = "kitti"
    c.data.crop_size = (288, 960)
    c.data.val_dataset, c.data.val_split = "kitti", "training"
    c.data.val_max_examples = 0
    return c
