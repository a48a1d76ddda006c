"""Optimiser and learning-rate schedules (optax), matching the official PyTorch recipe.

Official: `AdamW(lr, weight_decay=wd, eps=1e-8)`, gradient clipping to global norm `clip`,
and `OneCycleLR(max_lr=lr, total_steps=num_steps + 100, pct_start=0.05,
cycle_momentum=False, anneal_strategy='linear')` (or `CosineAnnealingLR(num_steps,
eta_min=1e-6)`), stepped once per training step after the update. Warm restarts
(`config.restarts`, not in the official code) continue a run with a fresh anneal.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import optax

ONECYCLE_DIV_FACTOR = 25.0          # torch default: initial_lr = max_lr / 25
ONECYCLE_FINAL_DIV_FACTOR = 1e4     # torch default: min_lr = initial_lr / 1e4
COSINE_ETA_MIN = 1e-6


def onecycle_linear(max_lr: float, total_steps: int, pct_start: float = 0.05,
                    div_factor: float = ONECYCLE_DIV_FACTOR,
                    final_div_factor: float = ONECYCLE_FINAL_DIV_FACTOR) -> optax.Schedule:
    """torch's `OneCycleLR(..., anneal_strategy='linear', three_phase=False)` as a schedule.

    Step s (0-based count of updates already applied) gets lr(s). Warm-up runs linearly from
    max_lr/div_factor to max_lr over steps 0..pct_start*T-1, then anneals linearly to
    max_lr/(div_factor*final_div_factor) at step T-1 (T = total_steps).
    """
    if total_steps < 2:
        raise ValueError(f"onecycle_linear: total_steps must be >= 2, got {total_steps}")
    initial = max_lr / div_factor
    final = initial / final_div_factor
    end_up = float(pct_start * total_steps) - 1.0
    end_down = float(total_steps - 1)

    def schedule(count):
        s = jnp.asarray(count, jnp.float32)
        up = initial + (max_lr - initial) * s / jnp.maximum(end_up, 1e-12)
        down = max_lr + (final - max_lr) * (s - end_up) / (end_down - end_up)
        return jnp.where(s <= end_up, up, down).astype(jnp.float32)

    return schedule


def cosine(max_lr: float, num_steps: int, eta_min: float = COSINE_ETA_MIN) -> optax.Schedule:
    """torch's `CosineAnnealingLR(T_max=num_steps, eta_min)`: lr(s) = eta_min + (lr - eta_min)
    (1 + cos(pi s / num_steps)) / 2."""
    if num_steps < 1:
        raise ValueError(f"cosine: num_steps must be >= 1, got {num_steps}")

    def schedule(count):
        s = jnp.asarray(count, jnp.float32)
        return (eta_min + (max_lr - eta_min) * (1.0 + jnp.cos(jnp.pi * s / num_steps)) / 2.0
                ).astype(jnp.float32)

    return schedule


def linear_anneal(lr: float, total_steps: int, final: float) -> optax.Schedule:
    """lr(t) on a line from `lr` at t = 0 to `final` at t = total_steps - 1: the one-cycle's
    anneal without its warm-up (a warm restart of `onecycle_linear` over the same horizon)."""
    if total_steps < 2:
        raise ValueError(f"linear_anneal: total_steps must be >= 2, got {total_steps}")

    def schedule(count):
        t = jnp.asarray(count, jnp.float32)
        return (lr + (final - lr) * t / float(total_steps - 1)).astype(jnp.float32)

    return schedule


def restarts_of(config) -> list[tuple[int, float]]:
    """`config.restarts` checked: [(step, lr), ...] with 0 < step_1 < step_2 < ... < num_steps
    and every lr > 0 (empty when the key is absent or empty).

    Raises:
      ValueError naming `config.restarts` and what was wrong.
    """
    raw = config.get("restarts", None) or ()
    out = []
    for item in raw:
        try:
            step, lr = item
            step_i, lr_f = int(step), float(lr)
        except (TypeError, ValueError):
            raise ValueError(f"config.restarts: {item!r} is not a (step, lr) pair") from None
        if step_i != step or not 0 < lr_f < math.inf:
            raise ValueError(f"config.restarts: {item!r} needs an integer step and a finite lr > 0")
        prev = out[-1][0] if out else 0
        if not prev < step_i < int(config.num_steps):
            raise ValueError(f"config.restarts: steps must increase within (0, num_steps = "
                             f"{config.num_steps}), got {step_i} after {prev}")
        out.append((step_i, lr_f))
    return out


def make_schedule(config) -> optax.Schedule:
    """The schedule named by `config.schedule` ("onecycle" | "cosine"), with the warm restarts
    in `config.restarts` (optional; `((step, lr), ...)`).

    Without restarts the schedule spans `num_steps` (the one-cycle over `num_steps + 100`, as
    the official code). With restarts the first cycle ends at the first restart's step; at each
    restart the lr jumps to its `lr` and anneals to the next restart's step (the last one to
    `num_steps`) the way the schedule anneals: one-cycle linearly, to the one-cycle's final lr
    (lr / 25 / 1e4) 100 steps past that step, as one-cycle over that horizon would; cosine to
    1e-6 at that step. A restart at step s with lr v is the one-cycle over horizon N evaluated
    from s on, where v is that one-cycle's lr at s.
    """
    if config.schedule not in ("onecycle", "cosine"):
        raise ValueError(f"config.schedule must be 'onecycle' or 'cosine', got {config.schedule!r}")
    restarts = restarts_of(config)
    first_end = restarts[0][0] if restarts else int(config.num_steps)
    if config.schedule == "onecycle":
        base = onecycle_linear(config.lr, first_end + 100, config.get("pct_start", 0.05))
        final = config.lr / (ONECYCLE_DIV_FACTOR * ONECYCLE_FINAL_DIV_FACTOR)

        def segment(lr, length):
            return linear_anneal(lr, length + 100, final)
    else:
        base = cosine(config.lr, first_end)

        def segment(lr, length):
            return cosine(lr, length)
    if not restarts:
        return base
    ends = [s for s, _ in restarts[1:]] + [int(config.num_steps)]
    segments = [segment(lr, end - step) for (step, lr), end in zip(restarts, ends)]
    return optax.join_schedules([base] + segments, [s for s, _ in restarts])


def adamw_without_lr(clip: float, weight_decay: float) -> optax.GradientTransformation:
    """Global-norm clip -> Adam (b1 0.9, b2 0.999, eps 1e-8) -> decoupled weight decay.

    The learning rate is left out: the train step multiplies the update by the schedule,
    `p <- p - lr(step) * (adam(g) + wd * p)`, which is torch's AdamW after
    `clip_grad_norm_(clip)` (clip <= 0 disables clipping).
    """
    parts = []
    if clip and clip > 0:
        parts.append(optax.clip_by_global_norm(clip))
    parts += [optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8),
              optax.add_decayed_weights(weight_decay)]
    return optax.chain(*parts)


def make_optimizer(config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(update transformation without lr, schedule) from a training config.

    Non-finite gradients are handled by the train step (skipped, never passed to the
    transformation).
    """
    return adamw_without_lr(config.clip, config.weight_decay), make_schedule(config)
