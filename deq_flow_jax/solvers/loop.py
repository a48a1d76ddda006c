"""The generic solver loop: one ``lax.while_loop`` with fixed-shape buffers.

Semantics (per sample b of the batch; step s = k + 1 is the s-th loop iteration):

* every step evaluates f once at the solver's proposal x and records
  abs = ||f(x) - x|| and rel = abs / (||f(x)|| + 1e-8) over the sample's flattened state;
* a step is a candidate once s >= ``solver.first_candidate_step``; a candidate with a finite
  residual replaces the best when its residual (of each mode, tracked separately) is below
  the lowest so far plus ``solver.accept_slack``; the returned value is the candidate
  (f-output or iterate, per solver) of the best step of ``stop_mode``, and ``nstep`` is s;
* a sample stops (is "done") when its residual drops below ``tol``, when its residual is
  not finite (the best finite iterate is kept; it is reported as not converged), or when
  the solver's own rule says so (Broyden's no-progress rule). A done sample stops changing:
  its best value, statistics and trace are frozen and f is fed its best value;
* the loop ends when every sample is done or after ``max_steps`` steps;
* ``capture``: for each index i in ``capture`` the best value right after step
  s = i - ``solver.capture_offset`` is stored (the official ``indexing`` rule: i counts
  f-evaluations, so Broyden, which evaluates f once before its first step, has offset 1).
  An index the solve never reaches gets the final best value; an index before the first
  candidate step gets ``z0``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp

from deq_flow_jax.solvers.base import where_b
from deq_flow_jax.solvers.flatten import make_flattener
from deq_flow_jax.solvers.solution import SolverStats

_EPS = 1e-8
STOP_MODES = ("abs", "rel")


def check_stop_mode(stop_mode: str, where: str = "stop_mode") -> str:
    """Returns `stop_mode` if it is "abs" or "rel"; raises ValueError naming `where` otherwise.

    The one check of this option: configs, adjoints, the entry point and the CLIs call it.
    """
    if stop_mode not in STOP_MODES:
        raise ValueError(f"{where} must be 'abs' or 'rel', got {stop_mode!r}")
    return stop_mode


class _Carry(NamedTuple):
    k: jax.Array
    state: Any
    best: jax.Array
    lowest_abs: jax.Array
    lowest_rel: jax.Array
    best_step: jax.Array
    abs_trace: jax.Array
    rel_trace: jax.Array
    done: jax.Array
    cap: Any


def solve_flat(fn: Callable[[jax.Array], jax.Array], z0: jax.Array, *, solver, max_steps: int,
               tol: float, stop_mode: str = "abs", capture: Sequence[int] = ()
               ) -> Tuple[jax.Array, Tuple[jax.Array, ...], SolverStats]:
    """Solves fn(z) = z on flattened per-sample states.

    Args:
      fn: maps (B, D) -> (B, D); must treat samples independently for per-sample stopping
        to be meaningful.
      z0: (B, D) initial state.
      solver: an :class:`~deq_flow_jax.solvers.base.AbstractSolver`.
      max_steps: static number of loop iterations at most (>= 1).
      tol: stop threshold on the residual of ``stop_mode``.
      stop_mode: "abs" or "rel".
      capture: static step indices (1-based) whose best iterate is also returned.

    Returns:
      (best (B, D), captured tuple of (B, D), SolverStats)
    """
    check_stop_mode(stop_mode)
    b = z0.shape[0]
    dtype = z0.dtype
    uniq = sorted(set(int(c) for c in capture))
    first = int(solver.first_candidate_step)
    slack = float(solver.accept_slack)
    offset = int(solver.capture_offset)
    inf = jnp.full((b,), jnp.inf, dtype)
    carry = _Carry(
        k=jnp.zeros((), jnp.int32),
        state=solver.init(z0, fn, max_steps),
        best=z0,
        lowest_abs=inf,
        lowest_rel=inf,
        best_step=jnp.zeros((b,), jnp.int32),
        abs_trace=jnp.zeros((max_steps, b), dtype),
        rel_trace=jnp.zeros((max_steps, b), dtype),
        done=jnp.zeros((b,), bool),
        cap=jnp.broadcast_to(z0, (len(uniq) + 1,) + z0.shape) if uniq else None,
    )
    cap_steps = jnp.asarray(uniq, jnp.int32) if uniq else None

    def cond(c: _Carry):
        return (c.k < max_steps) & ~jnp.all(c.done)

    def body(c: _Carry) -> _Carry:
        k = c.k
        s = k + 1
        x = where_b(c.done, c.best, solver.propose(c.state))
        fx = fn(x)
        state, cand = solver.update(c.state, k, x, fx)
        res_abs = jnp.sqrt(jnp.sum(jnp.square(fx - x), axis=1))
        res_rel = res_abs / (jnp.sqrt(jnp.sum(jnp.square(fx), axis=1)) + _EPS)
        finite = jnp.isfinite(res_abs) & jnp.isfinite(res_rel)
        active = ~c.done
        eligible = active & finite & (s >= first)
        low_abs = eligible & (res_abs < c.lowest_abs + slack)
        low_rel = eligible & (res_rel < c.lowest_rel + slack)
        low = low_abs if stop_mode == "abs" else low_rel
        best = where_b(low, cand, c.best)
        best_step = jnp.where(low, s, c.best_step)
        lowest_abs = jnp.where(low_abs, res_abs, c.lowest_abs)
        lowest_rel = jnp.where(low_rel, res_rel, c.lowest_rel)
        abs_trace = c.abs_trace.at[k].set(jnp.where(active, res_abs, lowest_abs))
        rel_trace = c.rel_trace.at[k].set(jnp.where(active, res_rel, lowest_rel))
        res = res_abs if stop_mode == "abs" else res_rel
        stop_trace = abs_trace if stop_mode == "abs" else rel_trace
        stalled = eligible & solver.stalled(stop_trace, k, res, tol)
        done = c.done | (eligible & (res < tol)) | (active & ~finite) | stalled
        cap = c.cap
        if cap is not None:
            hit = cap_steps == s + offset
            idx = jnp.where(jnp.any(hit), jnp.argmax(hit), len(uniq))
            cap = jax.lax.dynamic_update_index_in_dim(cap, best, idx, axis=0)
        return _Carry(s, state, best, lowest_abs, lowest_rel, best_step, abs_trace, rel_trace, done, cap)

    c = jax.lax.while_loop(cond, body, carry)

    rows = jnp.arange(max_steps)[:, None]
    abs_trace = jnp.where(rows >= c.k, c.lowest_abs[None, :], c.abs_trace)
    rel_trace = jnp.where(rows >= c.k, c.lowest_rel[None, :], c.rel_trace)
    lowest = c.lowest_abs if stop_mode == "abs" else c.lowest_rel
    stats = SolverStats(nstep=c.best_step, abs_lowest=c.lowest_abs, rel_lowest=c.lowest_rel,
                        abs_trace=abs_trace, rel_trace=rel_trace, converged=lowest < tol)
    captured = ()
    if uniq:
        slots = tuple(jnp.where(st - offset > c.k, c.best, c.cap[i]) for i, st in enumerate(uniq))
        captured = tuple(slots[uniq.index(int(ci))] for ci in capture)
    return c.best, captured, stats


def solve(fn: Callable[[Any, Any], Any], z0: Any, args: Any, *, solver, max_steps: int, tol: float,
          stop_mode: str = "abs", capture: Sequence[int] = ()) -> Tuple[Any, Tuple[Any, ...], SolverStats]:
    """Pytree front end of :func:`solve_flat` (no gradients: call it on stopped inputs).

    Args:
      fn: ``fn(z, args) -> z`` with ``z`` a pytree of (B, ...) leaves.
      z0, args: initial state and the extra arguments of ``fn``.

    Returns:
      (best pytree, captured tuple of pytrees, SolverStats)
    """
    flatten, unflatten, _ = make_flattener(z0)

    def fn_flat(x):
        return flatten(fn(unflatten(x), args))

    best, captured, stats = solve_flat(fn_flat, flatten(z0), solver=solver, max_steps=max_steps,
                                       tol=tol, stop_mode=stop_mode, capture=capture)
    return unflatten(best), tuple(unflatten(c) for c in captured), stats
