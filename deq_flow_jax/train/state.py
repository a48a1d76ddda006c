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
    """
    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jnp.ndarray
    skipped: jnp.ndarray


def create_train_state(variables: dict, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """A fresh state from model variables ({"params": ..., "batch_stats": ...}).

    The RNG is stored as raw uint32 key data so that checkpoints hold a plain array.
    """
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=jax.random.key_data(jax.random.PRNGKey(seed ^ 0x5EED)).astype(jnp.uint32),
        skipped=jnp.zeros((), jnp.int32),
    )


def state_variables(state: TrainState) -> dict:
    """Model variables of a state, in `init_model`'s layout."""
    out = {"params": state.params}
    if state.batch_stats:
        out["batch_stats"] = state.batch_stats
    return out
