"""Implicit differentiation (IFT) through a ``jax.custom_vjp``.

Forward: the value is z* itself (no extra f-evaluation). Backward, for an output
cotangent g: solve u = g + (df/dz)^T u at z* with any solver (its own settings), then
return vjp(f)(u) w.r.t. ``args``. The backward solve starts at u = 0 (as the official
code does) and treats samples independently.

Backward-solve statistics are observable through a probe: pass ``probe =
backward_probe()`` (zeros(3)) to ``fixed_point(..., bwd_probe=probe)`` (or to
``IFT.apply(..., probe=probe)``) and differentiate
w.r.t. it as well; its cotangent is ``[mean nstep, mean abs residual, mean rel
residual]`` over the batch of the backward solve (summed over the IFT applications in
the loss, if several).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from deq_flow_jax.adjoints.base import AbstractReportingAdjoint
from deq_flow_jax.solvers.base import AbstractSolver
from deq_flow_jax.solvers.broyden import Broyden
from deq_flow_jax.solvers.loop import check_stop_mode, solve


def backward_probe() -> jax.Array:
    """A zeros(3) float32 array whose gradient reports the IFT backward solve's stats."""
    return jnp.zeros((3,), jnp.float32)


@dataclasses.dataclass(frozen=True)
class IFT(AbstractReportingAdjoint):
    """Implicit-function-theorem gradient.

    Attributes:
      solver: solver of the backward linear fixed point (any of the forward solvers).
      max_steps: backward solver's step budget.
      tol: backward solver's tolerance.
      stop_mode: "abs" or "rel" for the backward solve.
    """

    solver: AbstractSolver = Broyden()
    max_steps: int = 40
    tol: float = 1e-3
    stop_mode: str = "abs"

    def __post_init__(self):
        check_stop_mode(self.stop_mode, "IFT: stop_mode")
        if not isinstance(self.solver, AbstractSolver):
            raise TypeError(f"IFT: solver must be an AbstractSolver (Anderson(), Broyden(), "
                            f"FixedPointIteration()), got {self.solver!r}")
        if int(self.max_steps) < 1:
            raise ValueError(f"IFT: max_steps must be >= 1, got {self.max_steps}")

    def apply(self, fn, z_star, args, probe=None):
        return _ift(self, fn, z_star, args, backward_probe() if probe is None else probe)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _ift(cfg: IFT, fn, z_star, args, probe):
    del cfg, fn, args, probe
    return z_star


def _ift_fwd(cfg, fn, z_star, args, probe):
    return z_star, (z_star, args, probe)


def _ift_bwd(cfg, fn, res, g):
    z_star, args, probe = res
    _, vjp_fn = jax.vjp(fn, z_star, args)

    def h(u, gg):
        (ju, _) = vjp_fn(u)
        return jax.tree_util.tree_map(jnp.add, gg, ju)

    u, _, stats = solve(h, jax.tree_util.tree_map(jnp.zeros_like, g), g, solver=cfg.solver,
                        max_steps=int(cfg.max_steps), tol=cfg.tol, stop_mode=cfg.stop_mode)
    _, g_args = vjp_fn(u)
    probe_ct = jnp.stack([jnp.mean(stats.nstep.astype(jnp.float32)),
                          jnp.mean(stats.abs_lowest.astype(jnp.float32)),
                          jnp.mean(stats.rel_lowest.astype(jnp.float32))]).astype(probe.dtype)
    return jax.tree_util.tree_map(jnp.zeros_like, z_star), g_args, probe_ct


_ift.defvjp(_ift_fwd, _ift_bwd)
