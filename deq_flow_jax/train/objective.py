"""The DEQ-Flow training objective for one device's shard (plugs into `step.make_train_step`).

Per step: optional Gaussian image noise, `model_forward` (the solver with the configured
gradient rule and fixed-point correction terms), the gamma-weighted L1 correction loss (with
an optional extra weight near motion boundaries),
optionally + jac_weight * Hutchinson ||J_f(z*)||_F^2, and the solver statistics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from deq_flow_jax.train.losses import fixed_point_correction_loss

NOISE_MAX_STD = 5.0


def add_image_noise(image1, image2, key, sample_idx):
    """Official `--add_noise`: x + std * N(0, 1), std ~ U(0, 5), clipped to [0, 255].

    The std is drawn per sample (official: per batch) from `fold_in(key, sample_idx)`, so the
    noise a sample gets does not depend on how the batch is split across devices.
    """
    def one(i1, i2, idx):
        k = jax.random.fold_in(key, idx)
        ks, k1, k2 = jax.random.split(k, 3)
        std = jax.random.uniform(ks, (), jnp.float32, 0.0, NOISE_MAX_STD)
        n1 = i1 + std * jax.random.normal(k1, i1.shape, jnp.float32)
        n2 = i2 + std * jax.random.normal(k2, i2.shape, jnp.float32)
        return jnp.clip(n1, 0.0, 255.0), jnp.clip(n2, 0.0, 255.0)
    return jax.vmap(one)(image1, image2, sample_idx)


def make_flow_loss_fn(model_cfg, deq_cfg, *, gamma: float = 0.8, add_noise: bool = False,
                      bn_train: bool = False, jac_weight: float = 0.0, jac_probes: int = 0,
                      sradius_iters: int = 0, boundary_weight: float = 0.0,
                      boundary_threshold: float = 1.0, boundary_radius: int = 2,
                      loss_margin: float = 0.0):
    """A per-device loss function with the signature `step.make_train_step` expects.

    Args:
      model_cfg, deq_cfg: `ModelConfig`, `DEQConfig` (static).
      gamma: correction-loss decay.
      boundary_weight, boundary_threshold, boundary_radius: extra loss weight near motion
        boundaries (`losses.fixed_point_correction_loss`; 0 = the official loss).
      loss_margin: per-component errors below this many px cost nothing
        (`losses.fixed_point_correction_loss`'s `margin`; 0 = the official loss).
      add_noise: image noise augmentation.
      bn_train: train the context encoder's batch norm (False = frozen, Things onwards).
      jac_weight, jac_probes: add jac_weight * Hutchinson estimate with `jac_probes` probes
        (both > 0 to enable; this variant computes the extra Jacobian-vector products).
      sradius_iters: > 0 logs the spectral radius of J_f(z*) (power iteration).

    The batch dict holds image1, image2 (b, H, W, 3) 0..255, flow (b, H, W, 2), valid (b, H, W).
    Metrics: epe, 1px, 3px, 5px (last prediction), f_nstep, f_abs, f_rel, and jac_loss /
    sradius when computed.
    """
    from deq_flow_jax.model import model_forward  # the model package is only needed here
    use_jac = jac_weight > 0 and jac_probes > 0

    def loss_fn(params, probe, batch_stats, batch, key, sample_idx):
        image1, image2 = batch["image1"], batch["image2"]
        if add_noise:
            image1, image2 = add_image_noise(image1, image2, jax.random.fold_in(key, 0),
                                             sample_idx)
        # Jacobian probes are drawn per shard (the estimator is a mean over samples anyway).
        probe_key = jax.random.fold_in(jax.random.fold_in(key, 1), sample_idx[0])
        out, new_bs = model_forward(
            {"params": params, "batch_stats": batch_stats}, model_cfg, deq_cfg, image1, image2,
            train=True, bn_train=bn_train, jac_probes=jac_probes if use_jac else 0,
            sradius_iters=sradius_iters, key=probe_key, bwd_probe=probe)
        loss, metrics = fixed_point_correction_loss(out.flow_predictions, batch["flow"],
                                                    batch["valid"], gamma=gamma,
                                                    boundary_weight=boundary_weight,
                                                    boundary_threshold=boundary_threshold,
                                                    boundary_radius=boundary_radius,
                                                    margin=loss_margin)
        stats = out.stats
        metrics.update(f_nstep=jnp.mean(stats.nstep.astype(jnp.float32)),
                       f_abs=jnp.mean(stats.abs_lowest), f_rel=jnp.mean(stats.rel_lowest))
        if use_jac:
            metrics["jac_loss"] = out.jac_loss
            loss = loss + jac_weight * out.jac_loss
        if sradius_iters:
            metrics["sradius"] = jnp.mean(out.sradius)
        return loss, (metrics, new_bs if bn_train else batch_stats)

    return loss_fn
