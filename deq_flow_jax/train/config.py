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
    if not 0.0 <= float(config.get("ema_decay", 0.0)) < 1.0:
        raise ValueError(f"config.ema_decay must be in [0, 1), got {config.ema_decay}")
    if config.lr <= 0:
        raise ValueError(f"config.lr must be > 0, got {config.lr}")
    if config.schedule not in ("onecycle", "cosine"):
        raise ValueError(f"config.schedule must be 'onecycle' or 'cosine', got {config.schedule!r}")
    from deq_flow_jax.train.optim import restarts_of
    restarts_of(config)                     # raises on a malformed config.restarts
    if float(config.get("boundary_weight", 0.0)) < 0:
        raise ValueError(f"config.boundary_weight must be >= 0, got {config.boundary_weight}")
    if float(config.get("boundary_threshold", 1.0)) <= 0:
        raise ValueError(f"config.boundary_threshold must be > 0, got {config.boundary_threshold}")
    if int(config.get("boundary_radius", 2)) < 0:
        raise ValueError(f"config.boundary_radius must be >= 0, got {config.boundary_radius}")
    if not float(config.get("loss_margin", 0.0)) >= 0:       # also refuses NaN
        raise ValueError(f"config.loss_margin must be >= 0, got {config.loss_margin}")
    if config.jac_weight < 0 or config.sradius_every < 0:
        raise ValueError("config.jac_weight and config.sradius_every must be >= 0")
    if config.jac_weight > 0 and config.jac_probes < 1:
        raise ValueError("config.jac_weight > 0 needs config.jac_probes >= 1")
    extra_validations(config.data)          # raises on a malformed data.extra_val
    layered = dict(config.data.get("layered", None) or {})
    if layered:                             # before the workdir is claimed, not at the loader
        from deq_flow_jax.data.layered_source import layered_config
        layered.pop("seed", None)
        try:
            layered_config(**layered)
        except (TypeError, ValueError) as err:
            raise ValueError(f"config.data.layered: {err}") from None
    crop = tuple(config.data.crop_size)
    if len(crop) != 2 or crop[0] % 8 or crop[1] % 8:
        raise ValueError(f"config.data.crop_size must be (H, W), multiples of 8; got {crop}")


def model_config(config):
    """`ModelConfig.variant(**config.model)`; `config.mixed_precision` sets compute_dtype bfloat16."""
    from deq_flow_jax.model import ModelConfig
    kw = dict(config.model)
    name = kw.pop("variant")
    for k in ("hidden_dim", "flow_head_dim"):      # 0 (or absent): the variant's width
        if not kw.get(k):
            kw.pop(k, None)
    if config.get("mixed_precision", False):
        kw["compute_dtype"] = "bfloat16"
    return ModelConfig.variant(name, **kw)


def deq_config(config):
    """`DEQConfig(**config.deq)`."""
    from deq_flow_jax.model import DEQConfig
    return DEQConfig.from_dict(dict(config.deq))


def extra_validations(data_cfg) -> list[tuple[str, str, int]]:
    """`data.extra_val` parsed: a comma-separated list of `dataset[:split[:max_examples]]`
    (split defaults to 'validation', max_examples to 0 = all), validated beside the main set.

    Raises:
      ValueError naming `config.data.extra_val` on a malformed entry.
    """
    spec = str(data_cfg.get("extra_val", "") or "").strip()
    out = []
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        parts = entry.split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"config.data.extra_val: {entry!r} is not dataset[:split[:max_examples]]")
        split = parts[1] if len(parts) > 1 and parts[1] else "validation"
        try:
            n = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"config.data.extra_val: {entry!r}: max_examples must be an integer >= 0")
        out.append((parts[0], split, n))
    names = [d for d, _, _ in out]
    if len(set(names)) != len(names) or data_cfg.get("val_dataset") in names:
        raise ValueError(f"config.data.extra_val: {spec!r} names a dataset twice (or the main "
                         f"val_dataset {data_cfg.get('val_dataset')!r})")
    return out


def validation_source(data_cfg, dataset: str | None = None, split: str | None = None):
    """Opens a validation source of a training config (the main `val_dataset`/`val_split`
    by default) with the config's generator settings (`data.synthetic`, `data.layered`)."""
    import os

    from deq_flow_jax.data import make_eval_source
    from deq_flow_jax.data.sources import generator_kwargs
    dataset = dataset or data_cfg.val_dataset
    split = split or data_cfg.val_split
    kw = generator_kwargs(dataset, data_cfg.get("synthetic", None), data_cfg.get("layered", None))
    return make_eval_source(dataset, split, data_dir=os.path.expanduser(data_cfg.data_dir), **kw)
