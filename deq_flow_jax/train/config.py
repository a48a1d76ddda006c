"""Checks a training ConfigDict (contract 5) and converts it to the frozen model configs."""
from __future__ import annotations

REQUIRED = ("seed", "num_steps", "batch_size", "lr", "weight_decay", "schedule", "clip", "gamma",
            "add_noise", "freeze_bn", "mixed_precision", "model", "deq", "jac_weight",
            "jac_every", "jac_probes", "sradius_every", "sradius_iters", "data", "log_every",
            "eval_every", "checkpoint_every", "num_val_images")
REQUIRED_DATA = ("stage", "data_dir", "crop_size", "num_workers", "val_dataset", "val_split",
                 "val_max_examples")


def check_config(config) -> None:
    """Raises ValueError naming the offending `config.` key."""
    missing = [k for k in REQUIRED if k not in config]
    missing += [f"data.{k}" for k in REQUIRED_DATA if "data" in config and k not in config.data]
    if missing:
        raise ValueError(f"training config is missing key(s): {', '.join(missing)}")
    for key in ("num_steps", "batch_size", "log_every", "eval_every", "checkpoint_every",
                "jac_every"):
        if int(config[key]) < 1:
            raise ValueError(f"config.{key} must be >= 1, got {config[key]}")
    if config.lr <= 0:
        raise ValueError(f"config.lr must be > 0, got {config.lr}")
    if config.schedule not in ("onecycle", "cosine"):
        raise ValueError(f"config.schedule must be 'onecycle' or 'cosine', got {config.schedule!r}")
    if config.jac_weight < 0 or config.sradius_every < 0:
        raise ValueError("config.jac_weight and config.sradius_every must be >= 0")
    if config.jac_weight > 0 and config.jac_probes < 1:
        raise ValueError("config.jac_weight > 0 needs config.jac_probes >= 1")
    crop = tuple(config.data.crop_size)
    if len(crop) != 2 or crop[0] % 8 or crop[1] % 8:
        raise ValueError(f"config.data.crop_size must be (H, W), multiples of 8; got {crop}")


def model_config(config):
    """`ModelConfig.variant(**config.model)`; `config.mixed_precision` sets compute_dtype bfloat16."""
    from deq_flow_jax.model import ModelConfig
    kw = dict(config.model)
    name = kw.pop("variant")
    if config.get("mixed_precision", False):
        kw["compute_dtype"] = "bfloat16"
    return ModelConfig.variant(name, **kw)


def deq_config(config):
    """`DEQConfig(**config.deq)`."""
    from deq_flow_jax.model import DEQConfig
    return DEQConfig.from_dict(dict(config.deq))
