"""The shipped synthetic dataset (built on first use), a tiny DEQ-Flow, CPU-sized.

    deq-flow train --config deq_flow_jax/configs/synthetic.py --workdir runs/synth
    deq-flow train --config deq_flow_jax/configs/synthetic.py:B ...      # another variant

96x128 pairs of textured layers moving rigidly (1000 train / 100 validation pairs); 64x96
centre crops without augmentation, batch 4, lr 1e-3, 8 Anderson steps, 2 correction terms,
batch norm trained. Measured: 400 steps (7-15 min on a 2-core CPU) bring the validation EPE
from 6.49 px (zero flow) to 3.40 px (first generator), from 6.35 to 4.90 px (synthetic_flow 1.1.0).
"""
import ml_collections

from deq_flow_jax.configs.common import base_config


def get_config(arg: str | None = None):
    c = base_config(arg or "tiny")
    c.num_steps = 400
    c.batch_size = 4
    c.lr = 1e-3
    c.weight_decay = 1e-4
    c.deq.f_max_steps = c.deq.b_max_steps = 8
    c.deq.n_losses = 2
    c.data.stage = "synthetic"
    c.data.data_dir = "~/tensorflow_datasets"
    c.data.crop_size = (64, 96)
    c.data.num_workers = 0
    c.data.augment = False
    c.data.val_dataset, c.data.val_split = "synthetic", "validation"
    c.data.val_max_examples = 16
    # kwargs of deq_flow_jax.data.ensure_synthetic (height, width, num_train, num_val, seed)
    c.data.synthetic = ml_collections.ConfigDict(dict(
        height=96, width=128, num_train=1000, num_val=100, seed=0))
    c.log_every = 10
    c.eval_every = 100
    c.checkpoint_every = 100
    c.num_val_images = 4
    return c
