"""Datasets and input pipelines (contract 3 of docs/DESIGN.md).

* `make_train_loader(stage, *, data_dir, crop_size, global_batch_size, seed, ...)`
* `make_eval_source(name, split, *, data_dir, ...)`, `make_eval_loader(...)`
* `ensure_synthetic(data_dir, ...)`: builds the synthetic dataset on first use.
"""
from deq_flow_jax.data.augment import AugConfig, augment
from deq_flow_jax.data.mixtures import Component, stage_components
from deq_flow_jax.data.pipeline import make_eval_loader, make_train_loader, split_for_devices
from deq_flow_jax.data.sources import FlowSource, make_eval_source
from deq_flow_jax.data.synthetic import SceneConfig, generate_scene, warp_backward
from deq_flow_jax.data.synthetic_tfds import SyntheticConfig, SyntheticFlow, ensure_synthetic

__all__ = [
    "AugConfig", "augment", "Component", "stage_components", "make_train_loader",
    "make_eval_loader", "split_for_devices", "FlowSource", "make_eval_source", "SceneConfig", "generate_scene",
    "warp_backward", "SyntheticConfig", "SyntheticFlow", "ensure_synthetic",
]
