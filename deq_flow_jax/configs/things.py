"""Stage 2, FlyingThings3D (clean + final), from the Chairs weights: 120k steps, batch 6,
lr 1.25e-4, 400x720, wd 1e-4, 40 solver steps, 2 correction terms with 3 phantom steps,
gradients into the correlation lookup (`all_grad`), batch norm frozen.

    deq-flow train --config deq_flow_jax/configs/things.py:H --workdir runs/things-H \
        --config.init_from=runs/chairs-H
"""
from deq_flow_jax.configs.common import base_config


def get_config(arg: str | None = None):
    c = base_config(arg or "B")
    c.batch_size = 6
    c.lr = 1.25e-4
    c.freeze_bn = True
    c.deq.f_max_steps = c.deq.b_max_steps = 40
    c.deq.n_losses = 2
    c.deq.phantom_steps = (3,)
    c.deq.all_grad = True
    c.data.stage = "things"
    c.data.crop_size = (400, 720)
    c.data.val_dataset, c.data.val_split = "sintel_clean", "training"
    c.data.val_max_examples = 200
    return c
