"""Solver benchmark: f-evaluations and wall time to reach the tolerance, ours vs jaxopt/optimistix.

    python benchmarks/solvers.py            # full sizes
    python benchmarks/solvers.py --quick    # small sizes (seconds)

Problems (per-sample batched, B samples of dimension D, float32):
  * ``affine``: z = A_b z + c_b, symmetric A_b with spectral radius in [0.9, 0.97];
  * ``tanh``: z = tanh(W_b z + c_b), ||W_b||_2 = 0.95.
Methods: our Anderson / Broyden / FixedPointIteration, jaxopt ``AndersonAcceleration``
(same history size and ridge) and optimistix ``FixedPointIteration`` (two-norm, atol = tol),
the latter two vmapped over the batch (per-sample stopping like ours). ``f_evals`` counts
calls of the batched f (a ``jax.debug.callback`` counter, in a separate untimed run);
``wall_ms`` is the fastest of ``--repeats`` runs of the compiled solve, the methods
interleaved run by run (robust to a shared machine); timings exclude compilation.

Then the solver overhead per iteration on the DEQ-Flow-B state at 368x496, batch 2
(h: (2, 46, 62, 128), c: (2, 46, 62, 2)) with a cheap elementwise f:
(T(solver, N steps) - T(N plain f applications in a loop with a traced trip count)) / N.

Prints one JSON document and a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from deq_flow_jax.adjoints import NoGrad
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration


def _problems(b: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = []
    for r in np.linspace(0.9, 0.97, b):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        A.append(q @ np.diag(np.linspace(-r, r, d)) @ q.T)
    A = np.stack(A)
    c = 10.0 * rng.normal(size=(b, d))
    zs = np.linalg.solve(np.eye(d)[None] - A, c[..., None])[..., 0]
    W = rng.normal(size=(b, d, d))
    W = W / np.linalg.norm(W, 2, axis=(1, 2), keepdims=True) * 0.95
    c2 = rng.normal(size=(b, d))
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {
        "affine": (lambda z, a: jnp.einsum("...ij,...j->...i", a[0], z) + a[1], (f32(A), f32(c)), zs),
        "tanh": (lambda z, a: jnp.tanh(jnp.einsum("...ij,...j->...i", a[0], z) + a[1]), (f32(W), f32(c2)), None),
    }


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))       # compile + warm up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return min(ts)   # the least disturbed run: robust on a shared machine


def _counted(f):
    """f plus a host-side counter of its (batched) evaluations."""
    box = {"n": 0}

    def bump():
        box["n"] += 1

    def g(z, a):
        jax.debug.callback(bump)
        return f(z, a)

    return g, box


def _methods(m: int, ridge: float, tol: float, max_steps: int):
    out = {}
    for name, solver in (("ours/anderson", Anderson(m=m, ridge=ridge)), ("ours/broyden", Broyden()),
                         ("ours/iteration", FixedPointIteration(return_final=False))):
        def run(f, z0, args, solver=solver):
            sol = fixed_point(f, z0, args, solver=solver, max_steps=max_steps, tol=tol, adjoint=NoGrad())
            return sol.value, sol.stats.abs_lowest, sol.stats.converged
        out[name] = run
    try:
        import jaxopt

        def run_jaxopt(f, z0, args):
            def one(z, a):
                fp = lambda x, a: f(x[None], jax.tree_util.tree_map(lambda t: t[None], a))[0]  # noqa: E731
                # (implicit_diff=False would unroll a scan to maxiter)
                solver = jaxopt.AndersonAcceleration(fixed_point_fun=fp, history_size=m, ridge=ridge, tol=tol,
                                                     maxiter=max_steps, jit=True)
                p, st = solver.run(z, a)
                return p, st.error, st.error < tol
            return jax.vmap(one)(z0, args)
        out["jaxopt/anderson"] = run_jaxopt
    except ImportError:
        print("jaxopt not installed: skipped (pip install -e '.[bench]')", file=sys.stderr)
    try:
        import optimistix as optx

        def run_optx(f, z0, args):
            def one(z, a):
                fp = lambda x, a: f(x[None], jax.tree_util.tree_map(lambda t: t[None], a))[0]  # noqa: E731
                solver = optx.FixedPointIteration(rtol=0.0, atol=tol, norm=optx.two_norm)
                sol = optx.fixed_point(fp, solver, z, a, max_steps=max_steps, throw=False)
                res = jnp.linalg.norm(fp(sol.value, a) - sol.value)
                return sol.value, res, sol.result == optx.RESULTS.successful
            return jax.vmap(one)(z0, args)
        out["optimistix/iteration"] = run_optx
    except ImportError:
        print("optimistix not installed: skipped (pip install -e '.[bench]')", file=sys.stderr)
    return out


def bench_problems(b, d, m, ridge, tol, max_steps, repeats):
    rows = []
    for pname, (f, args, zs) in _problems(b, d).items():
        z0 = jnp.zeros((b, d), jnp.float32)
        methods = _methods(m, ridge, tol, max_steps)
        timed, found = {}, {}
        for mname, run in methods.items():
            fc, box = _counted(f)
            value, res, conv = jax.jit(lambda z0, a, run=run, fc=fc: run(fc, z0, a))(z0, args)
            jax.block_until_ready(value)
            found[mname] = (box["n"], value, res, conv)
            timed[mname] = jax.jit(lambda z0, a, run=run: run(f, z0, a))
            jax.block_until_ready(timed[mname](z0, args))          # compile + warm up
        times = {k: [] for k in timed}
        for _ in range(repeats):                                   # interleaved: same load for all
            for mname, fn in timed.items():
                t = time.perf_counter()
                jax.block_until_ready(fn(z0, args))
                times[mname].append(time.perf_counter() - t)
        for mname, (evals, value, res, conv) in found.items():
            err = float(np.max(np.abs(np.asarray(value) - zs))) if zs is not None else None
            rows.append({"problem": pname, "method": mname, "f_evals": evals,
                         "wall_ms": round(min(times[mname]) * 1e3, 3),
                         "max_residual": float(jnp.max(res)), "all_converged": bool(jnp.all(conv)),
                         "max_abs_err": err})
    return rows


def bench_overhead(steps, repeats, shape=(2, 46, 62)):
    h = jnp.ones(shape + (128,), jnp.float32)
    c = jnp.ones(shape + (2,), jnp.float32)
    z0 = {"h": h, "c": c}

    def f(z, a):
        return {"h": a * z["h"] + 1.0, "c": a * z["c"] - 1.0}

    a = jnp.float32(0.5)
    # a traced trip count: XLA cannot unroll and fuse the f applications across iterations
    plain = jax.jit(lambda z, a, n: jax.lax.fori_loop(0, n, lambda i, z: f(z, a), z))
    t_plain = _time(plain, z0, a, jnp.int32(steps), repeats=repeats)
    rows = []
    for name, solver in (("anderson(m=6)", Anderson()), ("broyden", Broyden()), ("iteration", FixedPointIteration())):
        run = jax.jit(lambda z, a, solver=solver: fixed_point(f, z, a, solver=solver, max_steps=steps, tol=0.0,
                                                              adjoint=NoGrad()).value)
        t = _time(run, z0, a, repeats=repeats)
        rows.append({"solver": name, "steps": steps, "solve_ms": round(t * 1e3, 3),
                     "plain_f_loop_ms": round(t_plain * 1e3, 3),
                     "f_eval_ms": round(t_plain / steps * 1e3, 4),
                     "overhead_per_iter_ms": round((t - t_plain) / steps * 1e3, 4)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--m", type=int, default=5, help="Anderson history size (ours and jaxopt)")
    p.add_argument("--ridge", type=float, default=1e-5, help="Anderson ridge (ours and jaxopt)")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--overhead-steps", type=int, default=20)
    a = p.parse_args(argv)
    b, d = (4, 64) if a.quick else (a.batch, a.dim)
    rows = bench_problems(b, d, a.m, a.ridge, a.tol, a.max_steps, a.repeats)
    over = bench_overhead(5 if a.quick else a.overhead_steps, a.repeats,
                          shape=(2, 12, 16) if a.quick else (2, 46, 62))
    doc = {"device": str(jax.devices()[0]), "jax": jax.__version__, "batch": b, "dim": d, "m": a.m,
           "ridge": a.ridge, "tol": a.tol, "max_steps": a.max_steps, "problems": rows, "overhead": over}
    print(json.dumps(doc, indent=1))
    print()
    print(f"{'problem':8} {'method':22} {'f_evals':>8} {'wall_ms':>9} {'max_res':>9} {'conv':>5} {'max_err':>9}")
    for r in rows:
        err = "-" if r["max_abs_err"] is None else f"{r['max_abs_err']:.2e}"
        print(f"{r['problem']:8} {r['method']:22} {r['f_evals']:8d} {r['wall_ms']:9.2f} {r['max_residual']:9.2e} "
              f"{str(r['all_converged']):>5} {err:>9}")
    print()
    print(f"{'solver':14} {'steps':>5} {'solve_ms':>9} {'f_eval_ms':>9} {'overhead/iter_ms':>16}")
    for r in over:
        print(f"{r['solver']:14} {r['steps']:5d} {r['solve_ms']:9.2f} {r['f_eval_ms']:9.3f} "
              f"{r['overhead_per_iter_ms']:16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
