"""Inference benchmark: seconds per solver iteration, fixed cost and compile time.

    PYTHONPATH=$PWD python benchmarks/inference.py [--variants B H] [--size 368 496]
        [--steps 12 24] [--solver anderson] [--repeats 3] [--official /path/to/code.v.2.0]
        [--ceiling]

For each variant, `estimate_flow` (random weights, batch 1) is compiled and timed with
exactly 12 and 24 f-evaluations (tol 0, so the solver never stops early):
per-iteration = (t24 - t12) / 12, fixed cost (encoders, correlation, upsampling) =
t12 - 12 * per-iteration. One f application is also timed alone (jit of f).
If the official code is given (flag or DEQ_FLOW_OFFICIAL env var; never part of this
repository) and torch is installed, the official model is timed the same way in the same
run and the ratio ours / official is printed. XLA's cost analysis gives the FLOPs of one f
application (`f_flops`) and of the encoders (`encode_flops`); `f_gflop_per_s` is f_flops over
the per-iteration time. `--ceiling` also times a 2048^3 float32 matrix product (XLA and torch),
the rate this machine reaches in practice. Prints one JSON line, then a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np


def _time(fn, repeats):
    """Minimum over repeats of (wall seconds, process CPU seconds of all threads)."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu


def _summarise(res, times, steps):
    """per-iteration = slope between the two step counts, fixed = intercept (wall and CPU)."""
    lo, hi = min(steps), max(steps)
    for i, tag in ((0, ""), (1, "cpu_")):
        res[f"{tag}forward_s_{lo}"], res[f"{tag}forward_s_{hi}"] = times[lo][i], times[hi][i]
        res[f"{tag}per_iter_s"] = (times[hi][i] - times[lo][i]) / (hi - lo)
        res[f"{tag}fixed_s"] = times[lo][i] - lo * res[f"{tag}per_iter_s"]


def bench_ours(variant, size, steps, solver, repeats):
    from deq_flow_jax.model import ModelConfig, estimate_flow, init_model
    from deq_flow_jax.model import deq_flow as D
    cfg = ModelConfig.variant(variant)
    v = init_model(cfg, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    h, w = size
    im1 = jnp.asarray(rng.uniform(0, 255, (1, h, w, 3)), jnp.float32)
    im2 = jnp.roll(im1, (2, 3), axis=(1, 2))
    res = {"variant": variant, "impl": "jax", "solver": solver}
    times = {}
    for n in steps:
        def run(n=n):
            return jax.block_until_ready(
                estimate_flow(v, cfg, im1, im2, solver=solver, max_steps=n, tol=0.0).flow)
        t = time.perf_counter()
        run()
        res[f"compile_s_{n}"] = time.perf_counter() - t
        times[n] = _time(run, repeats)
    _summarise(res, times, steps)
    # f alone
    enc_fn = jax.jit(lambda v, a, b: D.f_args(v, cfg, D.encode(v, cfg, a, b)[0]))
    args = jax.block_until_ready(enc_fn(v, im1, im2))
    f = jax.jit(D.DEQFunc(cfg))
    z = (jnp.zeros(args.inp.shape[:3] + (cfg.hidden_dim,)), args.coords0)
    jax.block_until_ready(f(z, args))
    res["f_alone_s"], res["cpu_f_alone_s"] = _time(lambda: jax.block_until_ready(f(z, args)),
                                                   3 * repeats)
    # XLA's count of floating-point operations of one f application (update block + lookup)
    res["f_flops"] = _flops(f.lower(z, args))
    res["encode_flops"] = _flops(enc_fn.lower(v, im1, im2))
    res["f_gflop_per_s"] = res["f_flops"] / res["per_iter_s"] / 1e9 if res["per_iter_s"] > 0 else None
    return res


def _flops(lowered) -> float:
    """Floating-point operations of a lowered computation (XLA's HLO cost analysis)."""
    ca = lowered.cost_analysis()
    if isinstance(ca, (list, tuple)):
        ca = ca[0]
    return float(ca["flops"])


def matmul_ceiling(n: int = 2048, repeats: int = 10) -> dict:
    """GFLOP/s of a float32 (n, n) @ (n, n) product through XLA and through torch (if present):
    what this machine's matrix units reach in practice, the ceiling for the convolutions of f."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(mm(a))
    wall, cpu = _time(lambda: jax.block_until_ready(mm(a)), repeats)
    out = {"n": n, "xla_gflop_per_s": 2 * n ** 3 / wall / 1e9, "xla_cpu_s_per_wall_s": cpu / wall}
    try:
        import torch
    except ImportError:
        return out
    t = torch.from_numpy(np.asarray(a))
    t @ t
    wall, cpu = _time(lambda: t @ t, repeats)
    out |= {"torch_gflop_per_s": 2 * n ** 3 / wall / 1e9, "torch_cpu_s_per_wall_s": cpu / wall,
            "torch_threads": torch.get_num_threads()}
    return out


def bench_official(path, variant, size, steps, solver, repeats):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import official

    times = official.inference_times(path, variant, size, steps, solver=solver, repeats=repeats,
                                     device="cpu")
    res = {"variant": variant, "impl": "official", "solver": solver}
    _summarise(res, times, steps)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=["B", "H"])
    p.add_argument("--size", nargs=2, type=int, default=[368, 496])
    p.add_argument("--steps", nargs=2, type=int, default=[12, 24])
    p.add_argument("--solver", default="anderson", choices=["anderson", "naive", "broyden"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ceiling", action="store_true",
                   help="also time a 2048^3 float32 matrix product (XLA, torch): GFLOP/s ceiling")
    p.add_argument("--official", default=os.environ.get("DEQ_FLOW_OFFICIAL"),
                   help="path to a local copy of the official code.v.2.0 (timed for the ratio)")
    a = p.parse_args(argv)
    rows = []
    for var in a.variants:
        ours = bench_ours(var, tuple(a.size), a.steps, a.solver, a.repeats)
        rows.append(ours)
        if a.official:
            off = bench_official(a.official, var, tuple(a.size), a.steps, a.solver, a.repeats)
            for k in ("per_iter_s", "fixed_s", f"forward_s_{a.steps[0]}", f"forward_s_{a.steps[1]}"):
                for tag in ("", "cpu_"):
                    o, f = ours[tag + k], off[tag + k]
                    ours[f"ratio_{tag}{k}"] = o / f if f > 0 else float("nan")
            rows.append(off)
    ceiling = matmul_ceiling() if a.ceiling else None
    print(json.dumps({"device": str(jax.devices()[0]), "size": a.size, "results": rows,
                      "matmul_ceiling": ceiling}))
    print("wall seconds (min over repeats); CPU seconds of all threads in brackets")
    hdr = (f"{'variant':8} {'impl':9} {'per-iter s':>10} {'fixed s':>8} "
           f"{'fwd' + str(a.steps[0]) + ' s':>8} {'fwd' + str(a.steps[1]) + ' s':>8} "
           f"{'f alone s':>9} {'compile s':>9} {'ratio/iter':>10}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['variant']:8} {r['impl']:9} {r['per_iter_s']:10.4f} {r['fixed_s']:8.3f} "
              f"{r[f'forward_s_{a.steps[0]}']:8.3f} {r[f'forward_s_{a.steps[1]}']:8.3f} "
              f"{r.get('f_alone_s', float('nan')):9.4f} "
              f"{r.get(f'compile_s_{a.steps[0]}', float('nan')):9.1f} "
              f"{r.get('ratio_per_iter_s', float('nan')):10.2f}")
        print(f"{'':8} {'(cpu)':9} {r['cpu_per_iter_s']:10.4f} {r['cpu_fixed_s']:8.3f} "
              f"{r[f'cpu_forward_s_{a.steps[0]}']:8.3f} {r[f'cpu_forward_s_{a.steps[1]}']:8.3f} "
              f"{r.get('cpu_f_alone_s', float('nan')):9.4f} {'':9} "
              f"{r.get('ratio_cpu_per_iter_s', float('nan')):10.2f}")
    for r in rows:
        if r.get("f_flops"):
            rate = r["f_gflop_per_s"]
            print(f"{r['variant']}: f = {r['f_flops'] / 1e9:.2f} GFLOP per iteration, encoders + "
                  f"pyramid {r['encode_flops'] / 1e9:.1f} GFLOP; per-iteration rate "
                  + (f"{rate:.0f} GFLOP/s" if rate else "n/a"))
    if ceiling:
        print("matmul ceiling: " + ", ".join(f"{k} {v:.2f}" for k, v in ceiling.items()
                                           if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
