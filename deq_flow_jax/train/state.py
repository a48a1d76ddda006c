"""The training state: everything a resumed run needs to continue exactly."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Replicated training state (a pytree of arrays only).

    Attributes:
      step: int32 scalar, number of train steps taken (applied or skipped).
      params: model parameters.
      batch_stats: batch-norm running statistics ({} when the model has none).
      opt_state: optimiser state (AdamW moments and count; untouched by skipped steps).
      rng: uint32 key data (2,) of the run's base key; step keys are fold_in(rng, step).
      skipped: int32 scalar, number of steps whose update was skipped (non-finite gradient).
      ema_params: exponential moving average of `params` (`config.ema_decay` > 0), or {}
        when the run keeps none. Validation, the best checkpoint and every model read out of
        the workdir use it when present.
    """
    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jnp.ndarray
    skipped: jnp.ndarray
    ema_params: Any


def create_train_state(variables: dict, tx: optax.GradientTransformation, seed: int,
                       ema: bool = False) -> TrainState:
    """A fresh state from model variables ({"params": ..., "batch_stats": ...}).

    The RNG is stored as raw uint32 key data so that checkpoints hold a plain array.
    `ema`: keep a moving average of the parameters (starting at `params`).
    """
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=jax.random.key_data(jax.random.PRNGKey(seed ^ 0x5EED)).astype(jnp.uint32),
        skipped=jnp.zeros((), jnp.int32),
        ema_params=jax.tree.map(jnp.copy, params) if ema else {},
    )


def has_ema(state: TrainState) -> bool:
    """Whether the state keeps an EMA of its parameters."""
    return bool(jax.tree.leaves(state.ema_params))


def ema_decay_at(decay: float, step):
    """The EMA decay of update `step` (0-based): min(decay, (1 + step) / (10 + step)), so
    the average of a fresh run is not dominated by its random initialisation."""
    s = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + s) / (10.0 + s))


def state_variables(state: TrainState, ema: bool = True) -> dict:
    """Model variables of a state, in `init_model`'s layout: the EMA parameters when the
    state keeps them (and `ema`), else the raw ones."""
    out = {"params": state.ema_params if ema and has_ema(state) else state.params}
    if state.batch_stats:
        out["batch_stats"] = state.batch_stats
    return out
