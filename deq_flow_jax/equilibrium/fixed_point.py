"""The public entry point: ``fixed_point(fn, z0, args, ...) -> Solution``.

It sits above both the solvers (which find z*) and the adjoints (which give z* its
gradients) and is the only module that combines them.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from deq_flow_jax.adjoints.base import AbstractAdjoint, AbstractReportingAdjoint
from deq_flow_jax.adjoints.phantom import Phantom
from deq_flow_jax.solvers.anderson import Anderson
from deq_flow_jax.solvers.base import AbstractSolver
from deq_flow_jax.solvers.closure import closure_convert_all
from deq_flow_jax.solvers.flatten import batch_size_of
from deq_flow_jax.solvers.loop import check_stop_mode, solve
from deq_flow_jax.solvers.solution import SolverStats


class Solution(NamedTuple):
    """What :func:`fixed_point` returns (a pytree).

    Attributes:
      value: pytree like ``z0``, the lowest-residual iterate per sample, carrying the
        gradients of the chosen adjoint (for ``Phantom(k)`` it is the result of the k
        damped steps taken from that iterate).
      captured: tuple with one pytree like ``z0`` per entry of ``capture``: the best
        iterate after that many steps, with the gradients of ``capture_adjoint``.
      stats: :class:`~deq_flow_jax.solvers.SolverStats` (no gradients).
    """

    value: Any
    captured: tuple
    stats: SolverStats


def _check(fn, z0, args, solver, max_steps, tol, stop_mode, adjoint, capture, capture_adjoint):
    batch_size_of(z0, "z0")
    check_stop_mode(stop_mode, "fixed_point: stop_mode")
    if not isinstance(max_steps, numbers.Integral) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"fixed_point: max_steps must be a Python int >= 1, got {max_steps!r}")
    if isinstance(tol, numbers.Real) and not tol >= 0:   # a traced tol is allowed too
        raise ValueError(f"fixed_point: tol must be >= 0, got {tol!r}")
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"fixed_point: solver {solver!r} is not an AbstractSolver; use Anderson(), "
                        "Broyden() or FixedPointIteration()")
    cadj = tuple(capture_adjoint) if isinstance(capture_adjoint, (tuple, list)) else (capture_adjoint,)
    for a in (adjoint,) + cadj:
        if not isinstance(a, AbstractAdjoint):
            raise TypeError(f"fixed_point: adjoint {a!r} is not an AbstractAdjoint; use IFT(), "
                            "Phantom() or NoGrad()")
    for c in capture:
        if not isinstance(c, numbers.Integral) or isinstance(c, bool) or not 1 <= c <= max_steps:
            raise ValueError(f"fixed_point: capture indices must be ints in [1, max_steps={max_steps}], got {c!r}")
    if isinstance(capture_adjoint, (tuple, list)) and len(capture_adjoint) != len(capture):
        raise ValueError(f"fixed_point: capture_adjoint has {len(capture_adjoint)} entries for "
                         f"{len(capture)} capture indices")


def _check_output(out, z0):
    want = jax.tree_util.tree_structure(z0)
    if jax.tree_util.tree_structure(out) != want:
        raise ValueError(f"fixed_point: fn(z, args) must return a pytree like z0 ({want}), got "
                         f"{jax.tree_util.tree_structure(out)}")
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(z0)):
        if a.shape != jnp.shape(b):
            raise ValueError(f"fixed_point: fn(z, args) changes a leaf's shape: {jnp.shape(b)} -> {a.shape}")


def _apply(adjoint: AbstractAdjoint, f, z, full, probe):
    if probe is not None and isinstance(adjoint, AbstractReportingAdjoint):
        return adjoint.apply(f, z, full, probe=probe)
    return adjoint.apply(f, z, full)


def fixed_point(fn: Callable[[Any, Any], Any], z0: Any, args: Any = None, *,
                solver: AbstractSolver = Anderson(), max_steps: int = 40, tol: float = 1e-3,
                stop_mode: str = "abs", adjoint: AbstractAdjoint = Phantom(1),
                capture: Sequence[int] = (),
                capture_adjoint: AbstractAdjoint | Sequence[AbstractAdjoint] = Phantom(1),
                bwd_probe: jax.Array | None = None) -> Solution:
    """Finds z* = fn(z*, args) per sample with one ``lax.while_loop``.

    Args:
      fn: pure ``fn(z, args) -> z``; may close over arrays (they are hoisted into explicit
        arguments, see :mod:`deq_flow_jax.solvers.closure`, and receive gradients like ``args``).
      z0: pytree of floating (B, ...) arrays sharing the batch size B; the initial state.
      args: pytree of parameters/inputs; gradients flow to it through the adjoint.
      solver: ``Anderson(...)``, ``Broyden(...)`` or ``FixedPointIteration(...)``.
      max_steps: static step budget (the official ``f_thres``).
      tol: stop threshold (the official ``f_eps``); a sample stops when its residual < tol.
      stop_mode: "abs" (||f(z)-z||) or "rel" (||f(z)-z|| / (||f(z)|| + 1e-8)), per sample.
      adjoint: gradient rule of ``value``: ``Phantom(k, tau)``, ``IFT(...)`` or ``NoGrad()``.
      capture: static 1-based step indices (the official ``indexing``); see
        :mod:`deq_flow_jax.solvers.loop` for the exact rule.
      capture_adjoint: an adjoint for every captured state, or a tuple with one per index.
      bwd_probe: optional zeros(3) array (``backward_probe()``); its gradient reports the IFT
        backward solve's [mean nstep, mean abs residual, mean rel residual] (summed over the
        adjoints that report, see ``AbstractReportingAdjoint``; zero when none does).

    Returns:
      :class:`Solution` (value, captured, stats).
    """
    capture = tuple(capture)
    _check(fn, z0, args, solver, max_steps, tol, stop_mode, adjoint, capture, capture_adjoint)
    f, consts, out_shape = closure_convert_all(fn, z0, args)   # the only trace of the user's fn
    _check_output(out_shape, z0)
    full = (args, consts)
    max_steps = int(max_steps)
    capture = tuple(int(c) for c in capture)

    stop = jax.lax.stop_gradient
    z_star, captured, stats = solve(f, stop(z0), stop(full), solver=solver, max_steps=max_steps,
                                    tol=tol, stop_mode=stop_mode, capture=capture)
    value = _apply(adjoint, f, z_star, full, bwd_probe)
    cadj = tuple(capture_adjoint) if isinstance(capture_adjoint, (tuple, list)) else (capture_adjoint,) * len(capture)
    captured = tuple(_apply(a, f, c, full, bwd_probe) for a, c in zip(cadj, captured))
    return Solution(value=value, captured=captured, stats=jax.tree_util.tree_map(stop, stats))
