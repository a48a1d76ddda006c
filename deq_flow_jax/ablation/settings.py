"""The three ablation settings as overrides of one shared training config.

Each setting changes only the gradient rule (and the penalty); seeds, data, model, forward
solver, step budget and schedule stay those of the shared config, so the runs differ in
nothing else.

| name         | gradient                              | loss terms          | Jacobian penalty |
|--------------|---------------------------------------|---------------------|------------------|
| `ift`        | implicit (IFT, Broyden backward)      | final state         | off              |
| `ift_jac`    | implicit (IFT, Broyden backward)      | final state         | `jac_weight`     |
| `correction` | one-step phantom (k=1, tau=1)         | 1 correction + final| off              |
"""
from __future__ import annotations

import copy

import ml_collections

SETTINGS = ("ift", "ift_jac", "correction")
LABELS = {
    "ift": "IFT",
    "ift_jac": "IFT + Jacobian reg.",
    "correction": "1-step grad + 1 correction",
}


def setting_config(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """Returns a copy of the ablation `config` with setting `name` applied.

    Args:
      config: the ablation config (`deq_flow_jax/configs/ablation.py`), with an `ablation`
        section holding `jac_weight`, `jac_every`, `jac_probes`, `correction_n_losses`,
        `correction_phantom_steps`.
      name: one of `SETTINGS`.

    Returns:
      A training config for `deq_flow_jax.train.train_and_evaluate` (contract 5). The
      `ablation` section is kept, with `ablation.setting = name`.
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown ablation setting {name!r}; expected one of {', '.join(SETTINGS)}")
    ab = config.ablation
    cfg = ml_collections.ConfigDict(copy.deepcopy(config.to_dict()))
    cfg.deq.indexing = ()
    cfg.deq.tau = 1.0
    if name in ("ift", "ift_jac"):
        cfg.deq.grad = "ift"
        cfg.deq.n_losses = 1
        cfg.deq.phantom_steps = (1,)
    else:
        n = int(ab.correction_n_losses)
        if n < 1 or n > int(cfg.deq.f_max_steps):
            raise ValueError(f"ablation.correction_n_losses={n} must lie in 1..f_max_steps={cfg.deq.f_max_steps}")
        cfg.deq.grad = "phantom"
        cfg.deq.n_losses = n
        cfg.deq.phantom_steps = (int(ab.correction_phantom_steps),)
    if name == "ift_jac":
        if float(ab.jac_weight) <= 0:
            raise ValueError(f"ablation.jac_weight must be > 0 for setting ift_jac, got {ab.jac_weight}")
        cfg.jac_weight = float(ab.jac_weight)
        cfg.jac_every = int(ab.jac_every)
        cfg.jac_probes = int(ab.jac_probes)
    else:
        cfg.jac_weight = 0.0
    cfg.ablation.setting = name
    return cfg


def selected_settings(config: ml_collections.ConfigDict, only: str | None = None) -> tuple[str, ...]:
    """The settings to run: `only` (comma-separated) or `config.ablation.settings`."""
    names = tuple(s.strip() for s in only.split(",") if s.strip()) if only else tuple(config.ablation.settings)
    bad = [n for n in names if n not in SETTINGS]
    if bad or not names:
        raise ValueError(f"ablation settings {names!r}: each must be one of {', '.join(SETTINGS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"ablation settings {names!r} repeat a name")
    return names
