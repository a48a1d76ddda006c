"""The defaults every training stage starts from (contract 5 in docs/DESIGN.md).

Stage files (`chairs.py`, `things.py`, `sintel.py`, `kitti.py`, `synthetic.py`) call
`base_config()` and override what their stage changes. All keys can be overridden on the
command line: `--config.num_steps=200 --config.model.variant=tiny --config.deq.f_max_steps=12`.
"""
from __future__ import annotations

import ml_collections

VARIANTS = ("tiny", "S", "B", "L", "H", "G")


def base_config(variant: str = "B") -> ml_collections.ConfigDict:
    """Chairs-like defaults (official DEQ-Flow recipe, SPEC 3-4)."""
    if variant not in VARIANTS:
        raise ValueError(f"model variant must be one of {VARIANTS}, got {variant!r}")
    c = ml_collections.ConfigDict()
    c.seed = 1234
    c.num_steps = 120_000
    c.batch_size = 12                     # global, over all devices and processes
    c.lr = 4e-4
    c.weight_decay = 1e-4
    c.schedule = "onecycle"               # "onecycle" | "cosine"
    c.pct_start = 0.05
    c.restarts = ()                       # warm restarts ((step, lr), ...): train/optim.py
    c.clip = 1.0
    c.gamma = 0.8
    # > 0: pixels within boundary_radius px of a ground-truth motion discontinuity (a jump of
    # more than boundary_threshold px between neighbours) weigh 1 + boundary_weight times the
    # others in the loss, at the same mean weight (train/losses.py; not in the paper)
    c.boundary_weight = 0.0
    c.boundary_threshold = 1.0
    c.boundary_radius = 2
    # > 0: each flow component's error costs max(|error| - loss_margin, 0) px in the loss, so
    # errors a refinement after the model removes give no gradient (train/losses.py; not in the paper)
    c.loss_margin = 0.0
    c.add_noise = False
    c.freeze_bn = False
    c.mixed_precision = False
    c.init_from = ""                      # workdir of an earlier stage (or a model_io dir)

    # remat: "none" | "encoders" | "all" (ModelConfig.remat: recompute in the backward pass)
    # hidden_dim / flow_head_dim: 0 = the variant's widths; larger after `deq-flow widen`
    c.model = ml_collections.ConfigDict(dict(variant=variant, gma=False, wnorm=True, remat="none",
                                             hidden_dim=0, flow_head_dim=0))

    c.deq = ml_collections.ConfigDict(dict(
        f_solver="anderson", f_max_steps=36, f_tol=1e-3, f_stop_mode="abs",
        grad="phantom", phantom_steps=(1,), tau=1.0, n_losses=6, indexing=(),
        b_solver="broyden", b_max_steps=36, b_tol=1e-3, b_stop_mode="abs",
        all_grad=False, eval_factor=1.5))

    c.ema_decay = 0.0                     # > 0: keep an EMA of the weights (not in the paper)
    c.jac_weight = 0.0                    # 0 = no Jacobian regularisation
    c.jac_every = 1
    c.jac_probes = 1
    c.sradius_every = 0                   # 0 = no spectral radius monitor
    c.sradius_iters = 75

    c.data = ml_collections.ConfigDict(dict(
        stage="chairs", data_dir="~/tensorflow_datasets", crop_size=(368, 496), num_workers=4,
        val_dataset="chairs", val_split="validation", val_max_examples=0,    # 0 = all pairs
        augment=True,                     # False: centre crops, no augmentation
        extra_val=""))                    # more validation sets: "name[:split[:max]],..."

    c.log_every = 100
    c.eval_every = 5_000
    c.checkpoint_every = 5_000
    c.num_val_images = 4
    return c
