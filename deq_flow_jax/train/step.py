"""The data-parallel train step: per-device gradient, `lax.pmean`, skip non-finite updates.

`make_train_step` turns a model-agnostic loss function into a jitted step mapped with
`jax.shard_map` over the `data` mesh axis. Each device runs its own forward pass (its own
solver loop) on its shard; gradients, metrics and batch statistics are averaged with
`lax.pmean`, so the update equals the one of a single device holding the whole batch
(for losses that are means over equally sized shards).

Loss function contract (per device):

    loss_fn(params, probe, batch_stats, batch, key, sample_idx)
        -> (loss, (metrics: dict of scalars, new_batch_stats))

`probe` is a differentiable (3,) float32 zero vector (solver contract 1 `backward_probe`);
its gradient is reported as the IFT backward-solve statistics `b_nstep, b_abs, b_rel`.
`sample_idx` (b,) int32 holds the global indices of the shard's samples in the batch, so
per-sample randomness (`fold_in(key, idx)`) does not depend on the device count.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from deq_flow_jax.train.parallel import DATA_AXIS
from deq_flow_jax.train.state import TrainState, ema_decay_at, has_ema

LossFn = Callable[..., tuple]


def _select(pred, a, b):
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, mesh: Mesh, *, donate: bool = False,
                    ema_decay: float = 0.0):
    """Builds `train_step(state, batch) -> (state, metrics)`.

    Args:
      loss_fn: per-device loss, see the module docstring.
      tx: gradient transformation WITHOUT the learning rate (e.g. clip + Adam + weight decay);
        the update is `-schedule(state.step) * tx(grads)`, so the schedule advances on every
        step, skipped or not (as torch's scheduler does with a GradScaler).
      schedule: learning rate as a function of the step.
      mesh: 1-D mesh with axis `data`; `batch` leaves are sharded on their leading axis.
      donate: donate the input state's buffers.
      ema_decay: > 0 updates `state.ema_params` (which must exist, `create_train_state(...,
        ema=True)`) after every applied update: ema <- d ema + (1 - d) params with
        d = `state.ema_decay_at(ema_decay, step)`.

    Returns:
      A jitted function. `metrics` (replicated scalars): every entry of the loss metrics,
      "loss", "grad_norm" (before clipping), "lr", "finite" (1 if applied, 0 if skipped),
      "b_nstep", "b_abs", "b_rel".
    """

    def per_device(state: TrainState, batch: dict):
        if ema_decay > 0 and not has_ema(state):
            raise ValueError("make_train_step(ema_decay > 0) needs a state with ema_params "
                             "(create_train_state(..., ema=True))")
        b = jax.tree.leaves(batch)[0].shape[0]
        sample_idx = lax.axis_index(DATA_AXIS) * b + jnp.arange(b, dtype=jnp.int32)
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        probe = jnp.zeros((3,), jnp.float32)
        grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        (loss, (metrics, new_bs)), (grads, probe_grad) = grad_fn(
            state.params, probe, state.batch_stats, batch, key, sample_idx)
        grads, loss, metrics, new_bs, probe_grad = lax.pmean(
            (grads, loss, metrics, new_bs, probe_grad), DATA_AXIS)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(grad_norm) & jnp.isfinite(loss)
        # Keep NaN out of the optimiser maths even on the branch that is thrown away.
        safe_grads = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        updates, new_opt = tx.update(safe_grads, state.opt_state, state.params)
        lr = schedule(state.step)
        new_params = jax.tree.map(lambda p, u: p - lr * u.astype(p.dtype), state.params, updates)
        params = _select(finite, new_params, state.params)
        ema = state.ema_params
        if ema_decay > 0:
            d = ema_decay_at(ema_decay, state.step)
            ema = _select(finite, jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params), ema)
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            ema_params=ema,
            opt_state=_select(finite, new_opt, state.opt_state),
            batch_stats=_select(finite, new_bs, state.batch_stats),
            skipped=state.skipped + (1 - finite.astype(jnp.int32)),
        )
        out = dict(metrics)
        out.update(loss=loss, grad_norm=grad_norm, lr=jnp.asarray(lr, jnp.float32),
                   finite=finite.astype(jnp.float32), b_nstep=probe_grad[0],
                   b_abs=probe_grad[1], b_rel=probe_grad[2])
        return new_state, out

    # check_vma=False gives pmap semantics: the gradient of the replicated parameters is the
    # per-device gradient, averaged explicitly by `lax.pmean`. (With vma checking on, JAX
    # inserts an implicit psum when transposing the replicated->varying broadcast, and the
    # pmean would then average an already summed gradient.)
    mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(DATA_AXIS)),
                           out_specs=(P(), P()), check_vma=False)
    return jax.jit(mapped, donate_argnums=(0,) if donate else ())

