"""The train steps measured by `benchmarks/train_memory.py`, and the BPTT baseline.

`make_step(mode, steps, ...)` returns `(step, params, opt_state, batch)` with
`step(params, opt_state, batch) -> (params, opt_state, loss)`: forward, gamma-weighted L1
loss (the training loss of `deq_flow_jax.train.losses`), gradient and an AdamW update
(clip 1.0, as in training). Batch statistics are frozen (`bn_train=False`).

`bptt_flows(variables, cfg, image1, image2, n_iters)` is RAFT-style backpropagation
through time on DEQ-Flow's own fθ (`deq_flow_jax.model.deq_flow.DEQFunc`): z0 = (0,
coords0), z_{k+1} = fθ(z_k) for k < n_iters (unrolled in Python), each iterate decoded by
the convex upsampler; gradients flow through every step (the coordinates are detached
inside fθ, as RAFT detaches `coords1` between iterations).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_flow_jax.model import DEQConfig, ModelConfig, init_model, model_forward
from deq_flow_jax.model.deq_flow import DEQFunc, decode, encode, f_args
from deq_flow_jax.train.losses import fixed_point_correction_loss


def bptt_flows(variables, cfg: ModelConfig, image1, image2, n_iters: int):
    """Unrolled update operator with gradients through all steps.

    Args:
      variables: model variables (`init_model`).
      cfg: model config.
      image1, image2: (B, H, W, 3) float32 0..255, H and W multiples of 8.
      n_iters: number of fθ applications.

    Returns:
      (n_iters, B, H, W, 2) upsampled flow of every iterate, pixels.
    """
    enc, _ = encode(variables, cfg, image1, image2, bn_train=False)
    args = f_args(variables, cfg, enc)
    f = DEQFunc(cfg, all_grad=False)
    b, h, w, _ = enc.inp.shape
    z0 = (jnp.zeros((b, h, w, cfg.hidden_dim), jnp.float32), args.coords0)

    # A Python loop, as RAFT's: XLA:CPU runs the backward pass of the same loop written as
    # `lax.scan` 12x slower (measured at B, 368x496, 12 steps: 90.9 s vs 7.6 s per train step).
    z, flows = z0, []
    for _ in range(n_iters):
        z = f(z, args)
        flows.append(decode(variables, cfg, z, args.coords0)[0])
    return jnp.stack(flows)


def synthetic_batch(batch: int, size, seed: int = 0) -> dict:
    """A pair whose second frame is the first shifted by (3, 2) px, with that flow as truth."""
    rng = np.random.default_rng(seed)
    h, w = size
    img1 = rng.uniform(0, 255, (batch, h, w, 3)).astype(np.float32)
    img2 = np.roll(img1, shift=(2, 3), axis=(1, 2))
    flow = np.broadcast_to(np.array([3.0, 2.0], np.float32), (batch, h, w, 2)).copy()
    return {"image1": jnp.asarray(img1), "image2": jnp.asarray(img2), "flow": jnp.asarray(flow),
            "valid": jnp.ones((batch, h, w), jnp.float32)}


def deq_config(mode: str, steps: int, solver: str = "anderson") -> DEQConfig:
    """The DEQ gradient modes at a forward budget of `steps` (tolerance never reached)."""
    common = dict(f_solver=solver, f_max_steps=steps, f_tol=1e-8, f_stop_mode="abs", tau=1.0)
    if mode == "onestep":
        return DEQConfig(grad="phantom", phantom_steps=(1,), n_losses=1, **common)
    if mode == "correction6":
        return DEQConfig(grad="phantom", phantom_steps=(1,), n_losses=6, **common)
    if mode == "ift":
        return DEQConfig(grad="ift", n_losses=1, b_solver="broyden", b_max_steps=steps, b_tol=1e-8,
                         b_stop_mode="abs", **common)
    raise ValueError(f"unknown DEQ mode {mode!r}")


def make_step(mode: str, steps: int, *, variant: str = "B", size=(368, 496), batch: int = 1,
              solver: str = "anderson", seed: int = 0, gamma: float = 0.8, remat: str = "none",
              compute_dtype: str = "float32"):
    """Builds one train step of `mode` (`onestep` | `correction6` | `ift` | `bptt`).

    `remat` is `ModelConfig.remat` (`none` | `encoders` | `all`); BPTT honours it too (encoders;
    `all` also checkpoints every unrolled fθ application). `compute_dtype` is
    `ModelConfig.compute_dtype` (`bfloat16`: the mixed-precision training of `mixed_precision=True`).
    """
    cfg = ModelConfig.variant(variant, remat=remat, compute_dtype=compute_dtype)
    variables = init_model(cfg, jax.random.PRNGKey(seed), image_size=tuple(size))
    stats = variables["batch_stats"]
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(4e-4, eps=1e-8, weight_decay=1e-4))
    params = variables["params"]
    opt_state = tx.init(params)
    data = synthetic_batch(batch, size, seed)

    if mode == "bptt":
        def predictions(p, d):
            flows = bptt_flows({"params": p, "batch_stats": stats}, cfg, d["image1"], d["image2"], steps)
            return [flows[i] for i in range(steps)]
    else:
        deq = deq_config(mode, steps, solver)

        def predictions(p, d):
            out, _ = model_forward({"params": p, "batch_stats": stats}, cfg, deq, d["image1"], d["image2"],
                                   train=True, bn_train=False)
            return list(out.flow_predictions)

    def loss_fn(p, d):
        loss, _ = fixed_point_correction_loss(predictions(p, d), d["flow"], d["valid"], gamma=gamma)
        return loss

    def step(p, o, d):
        loss, grads = jax.value_and_grad(loss_fn)(p, d)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    return step, params, opt_state, data
