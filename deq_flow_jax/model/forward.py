"""Training-time forward pass: encoders, the equilibrium solve with its gradient rule, decoding.

`model_forward` implements contract 2 of docs/DESIGN.md: it returns the upsampled
flows of the supervised states (fixed-point correction terms first, final state
last), the low-resolution flow and hidden state of the final state, the solver
statistics and optional Jacobian / spectral-radius terms.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from deq_flow_jax.model import deq_flow as D
from deq_flow_jax.model.config import DEQConfig, ModelConfig
from deq_flow_jax.solvers.registry import make_solver


class ModelOutput(NamedTuple):
    """What `model_forward` returns (all NHWC, pixel units).

    flow_predictions: tuple of (B, H, W, 2), supervision order (captured first, final last).
    flow_lowres: (B, H/8, W/8, 2) final low-resolution flow.
    hidden: (B, H/8, W/8, hdim) final hidden state.
    stats: the solver's SolverStats.
    jac_loss: scalar Hutchinson estimate of ||J_f(z*)||_F^2 / numel, or None.
    sradius: (B,) spectral radius of J_f(z*), or None.
    """

    flow_predictions: Tuple[jax.Array, ...]
    flow_lowres: jax.Array
    hidden: jax.Array
    stats: Any
    jac_loss: Optional[jax.Array]
    sradius: Optional[jax.Array]


def init_model(cfg: ModelConfig, key: jax.Array, image_size: Tuple[int, int] = (64, 64)):
    """Random variables {"params", "batch_stats"} for `cfg` (image_size: multiples of 8).

    The result does not depend on image_size (fully convolutional); it only sets the dummy input.
    """
    return D.fast_init(cfg, key, tuple(int(s) for s in image_size))


def initial_state(cfg: ModelConfig, coords0, flow_init=None, cache=None):
    """z0 = (hidden, coords): zeros and coords0, or the cache, plus an optional warm-start flow."""
    b, h, w, _ = coords0.shape
    net = jnp.zeros((b, h, w, cfg.hidden_dim), jnp.float32)
    coords = coords0
    if cache is not None:
        c_net, c_flow = cache
        _check_shape("cache hidden", c_net, (b, h, w, cfg.hidden_dim))
        _check_shape("cache flow", c_flow, (b, h, w, 2))
        net, coords = jnp.asarray(c_net, jnp.float32), coords0 + jnp.asarray(c_flow, jnp.float32)
    if flow_init is not None:
        _check_shape("flow_init", flow_init, (b, h, w, 2))
        coords = coords + jnp.asarray(flow_init, jnp.float32)
    return net, coords


def _check_shape(name, x, expected):
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)} (B, H/8, W/8, C), "
                         f"got {tuple(x.shape)}")


def _pair(steps: Tuple[int, ...], ks: Tuple[int, ...]):
    """Official make_pair: one phantom step count per supervised term."""
    if len(ks) == len(steps):
        return ks
    if len(ks) == 1:
        return ks * len(steps)
    raise ValueError(f"phantom_steps {ks} cannot be paired with {len(steps)} loss terms")


def model_forward(variables, cfg: ModelConfig, deq: DEQConfig, image1, image2, *, train=True,
                  bn_train=False, flow_init=None, cache=None, jac_probes=0, sradius_iters=0,
                  key=None, bwd_probe=None, max_steps=None):
    """Training forward (contract 2).

    Args:
      variables: {"params", "batch_stats"}.
      cfg, deq: static configurations.
      image1, image2: (B, H, W, 3) float 0..255, H and W multiples of 8.
      train: supervise the captured states with `deq`'s gradient rules; False: no gradient,
        `deq.eval_max_steps` steps unless `max_steps` is given, only the final flow.
      bn_train: use batch statistics in the context encoder and update running stats.
      flow_init: (B, H/8, W/8, 2) warm-start flow; cache: (hidden, flow_lowres).
      jac_probes: Hutchinson probes for `jac_loss` (0: None). Needs `key`.
      sradius_iters: power iterations for `sradius` (0: None).
      key: PRNG key for the Jacobian / spectral radius probes.
      bwd_probe: `backward_probe()` array; its cotangent reports the IFT backward solve.
      max_steps: f-evaluations (default deq.f_max_steps in training).

    Returns:
      (ModelOutput, new_batch_stats).
    """
    from deq_flow_jax import adjoints as A
    from deq_flow_jax.equilibrium import fixed_point

    image1 = jnp.asarray(image1, jnp.float32)
    image2 = jnp.asarray(image2, jnp.float32)
    validate_pair(image1, image2, need_multiple_of_8=True)
    enc, new_stats = D.encode(variables, cfg, image1, image2, bn_train=bn_train)
    args = D.f_args(variables, cfg, enc)
    fn = D.DEQFunc(cfg, deq.all_grad)
    z0 = initial_state(cfg, args.coords0, flow_init, cache)
    solver = make_solver(deq.f_solver)
    if train:
        steps = deq.loss_steps(max_steps)
        ks = _pair(steps, deq.phantom_steps)
        capture = steps[:-1]
        cap_adj = tuple(A.Phantom(k, deq.tau) for k in ks[:-1])
        if deq.grad == "ift":
            adjoint = A.IFT(solver=make_solver(deq.b_solver), max_steps=deq.b_max_steps,
                            tol=deq.b_tol, stop_mode=deq.b_stop_mode)
        else:
            adjoint = A.Phantom(ks[-1], deq.tau)
        sol = fixed_point(fn, z0, args, solver=solver, max_steps=steps[-1], tol=deq.f_tol,
                          stop_mode=deq.f_stop_mode, adjoint=adjoint, capture=capture,
                          capture_adjoint=cap_adj if capture else A.Phantom(1, deq.tau),
                          bwd_probe=bwd_probe)
        states = tuple(sol.captured) + (sol.value,)
    else:
        n = deq.eval_max_steps if max_steps is None else max_steps
        sol = fixed_point(fn, z0, args, solver=solver, max_steps=n, tol=deq.f_tol,
                          stop_mode=deq.f_stop_mode, adjoint=A.NoGrad())
        states = (sol.value,)
    flows = tuple(D.decode(variables, cfg, z, args.coords0)[0] for z in states)
    hidden, coords = sol.value
    zstar = jax.lax.stop_gradient(sol.value)
    jac_loss = sradius = None
    if jac_probes or sradius_iters:
        from deq_flow_jax.equilibrium import jacobian as J
    if jac_probes:
        if key is None:
            raise ValueError("model_forward: jac_probes > 0 needs a PRNG `key`")
        jac_loss = J.jacobian_frobenius_sq(fn, zstar, args, jax.random.fold_in(key, 0),
                                           n_probes=jac_probes)
    if sradius_iters:
        skey = None if key is None else jax.random.fold_in(key, 1)
        sradius = jax.lax.stop_gradient(
            J.spectral_radius(fn, zstar, jax.lax.stop_gradient(args), n_iters=sradius_iters,
                              key=skey))
    out = ModelOutput(flows, coords - args.coords0, hidden, sol.stats, jac_loss, sradius)
    return out, new_stats


def validate_pair(image1, image2, need_multiple_of_8: bool = False):
    """Raises ValueError unless both images are (B, H, W, 3) of the same shape."""
    for name, im in (("image1", image1), ("image2", image2)):
        if im.ndim != 4 or im.shape[-1] != 3:
            raise ValueError(f"{name}: expected an RGB batch (B, H, W, 3), got shape "
                             f"{tuple(im.shape)}")
    if image1.shape != image2.shape:
        raise ValueError(f"image1 and image2 must have the same shape, got {tuple(image1.shape)} "
                         f"and {tuple(image2.shape)}")
    h, w = image1.shape[1:3]
    if need_multiple_of_8 and (h % 8 or w % 8):
        raise ValueError(f"model_forward: H and W must be multiples of 8, got {h}x{w} "
                         "(use estimate_flow for any size; it pads)")
    if h < 16 or w < 16:
        raise ValueError(f"images must be at least 16x16 pixels, got {h}x{w}")
