"""Train the implicit spiral classifier with optax.

    python -m experiments.implicit_classifier.train --solver anderson --adjoint ift --steps 300

Prints one JSON line every ``--log-every`` steps (loss, train/test accuracy, forward
solver steps and residual, and for IFT the backward solve's steps and residual) and a final
JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from deq_flow_jax.adjoints import IFT, NoGrad, Phantom, backward_probe
from deq_flow_jax.equilibrium import jacobian_frobenius_sq
from deq_flow_jax.solvers import SOLVER_NAMES, make_solver
from experiments.implicit_classifier.data import spirals
from experiments.implicit_classifier.model import cell, features, forward, init_params


def make_adjoint(name: str, solver_name: str, phantom_steps: int = 1):
    if name == "ift":
        return IFT(solver=make_solver(solver_name), max_steps=30, tol=1e-4)
    if name == "phantom":
        return Phantom(phantom_steps, 1.0)
    raise ValueError(f"--adjoint must be 'ift' or 'phantom', got {name!r}")


def train(*, solver: str = "anderson", adjoint: str = "ift", steps: int = 300, lr: float = 1e-2,
          hidden: int = 32, n_per_class: int = 100, seed: int = 0, jac_weight: float = 0.0,
          max_steps: int = 30, log_every: int = 50, out=None) -> Dict[str, Any]:
    """Trains and returns the final metrics (see module docstring for the logs).

    ``out``: text stream of the JSON log lines (default: sys.stdout at call time).
    """
    out = sys.stdout if out is None else out
    xtr, ytr = spirals(n_per_class, seed=seed)
    xte, yte = spirals(n_per_class, seed=seed + 1000)
    xtr, ytr, xte, yte = map(jnp.asarray, (xtr, ytr, xte, yte))
    params = init_params(jax.random.PRNGKey(seed), hidden=hidden)
    fwd_solver = make_solver(solver)
    adj = make_adjoint(adjoint, solver)
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    def loss_fn(params, probe, key):
        logits, sol = forward(params, xtr, solver=fwd_solver, adjoint=adj, max_steps=max_steps, bwd_probe=probe)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, ytr).mean()
        total = loss
        if jac_weight > 0:
            inj = features(params, xtr) @ params["U"].T
            z = jax.lax.stop_gradient(sol.value)
            total = total + jac_weight * jacobian_frobenius_sq(cell, z, (params, inj), key, 1)
        acc = jnp.mean(jnp.argmax(logits, -1) == ytr)
        return total, (loss, acc, sol.stats)

    @jax.jit
    def step(params, opt_state, key):
        (_, (loss, acc, st)), (g, g_probe) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
            params, backward_probe(), key)
        g["proj"] = jnp.zeros_like(g["proj"])
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        logs = {"loss": loss, "train_acc": acc, "fwd_nstep": jnp.mean(st.nstep),
                "fwd_abs": jnp.mean(st.abs_lowest), "bwd_nstep": g_probe[0], "bwd_abs": g_probe[1]}
        return params, opt_state, logs

    @jax.jit
    def evaluate(params):
        logits, sol = forward(params, xte, solver=fwd_solver, adjoint=NoGrad(), max_steps=max_steps)
        return jnp.mean(jnp.argmax(logits, -1) == yte), jnp.mean(sol.stats.converged)

    t0 = time.time()
    logs: Dict[str, Any] = {}
    for i in range(1, steps + 1):
        params, opt_state, logs = step(params, opt_state, jax.random.PRNGKey(i))
        if log_every and (i % log_every == 0 or i == steps):
            test_acc, conv = evaluate(params)
            rec = {"step": i, **{k: round(float(v), 5) for k, v in logs.items()},
                   "test_acc": round(float(test_acc), 4), "test_converged": round(float(conv), 3)}
            print(json.dumps(rec), file=out, flush=True)
    test_acc, conv = evaluate(params)
    result = {"solver": solver, "adjoint": adjoint, "steps": steps, "train_acc": float(logs["train_acc"]),
              "test_acc": float(test_acc), "test_converged": float(conv), "seconds": round(time.time() - t0, 2)}
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--solver", default="anderson", choices=SOLVER_NAMES,
                   help="forward solver (naive = plain fixed-point iteration)")
    p.add_argument("--adjoint", default="ift", choices=["ift", "phantom"])
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (full batch)")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--max-steps", type=int, default=30, help="forward solver steps")
    p.add_argument("--jac-weight", type=float, default=0.0, help="weight of the Hutchinson Jacobian penalty")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error(f"--steps must be >= 1, got {a.steps}")
    result = train(solver=a.solver, adjoint=a.adjoint, steps=a.steps, lr=a.lr, hidden=a.hidden,
                   n_per_class=a.n_per_class, seed=a.seed, jac_weight=a.jac_weight, max_steps=a.max_steps,
                   log_every=a.log_every)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
