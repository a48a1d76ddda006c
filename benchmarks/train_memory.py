"""Training memory and step time of DEQ-Flow's gradient modes against BPTT (issue 5).

One training step (forward, loss, gradient, AdamW update) of DEQ-Flow at batch 1,
368x496, variant B, in each mode:

* `onestep`      phantom one-step gradient, final state supervised (n_losses=1);
* `correction6`  6 fixed-point correction terms, one phantom step each (chairs stage);
* `ift`          implicit differentiation (Broyden backward solve, same step budget);
* `bptt`         RAFT-style backpropagation through time: fθ unrolled in a Python loop,
                 every iterate decoded and supervised (gamma 0.8), gradients through all
                 steps (`benchmarks/train_memory_step.py`).

for solver / unroll steps 12, 24 and 48. Each (mode, steps) runs in two fresh child
processes sharing a persistent compilation cache:

* compile phase: compile time, `jax.jit(step).lower(...).compile().memory_analysis()`
  (temp, argument, output and generated-code bytes; `temp_size_in_bytes` is what grows
  with the unroll) and the compiling process's peak RSS (`compile_peak_rss_mb`);
* run phase: loads the executable from the cache (no XLA compilation, whose own memory
  would otherwise dominate the high-water mark), runs one warm-up and `--iters` timed
  steps; `peak_rss_mb` is that process's peak RSS (ru_maxrss), comparable to a PyTorch
  process's; `step_s` the median step time.

* official phase (with `--official PATH` or `DEQ_FLOW_OFFICIAL`, a local copy of the official
  code.v.2.0, never part of this repository, and torch installed): the official PyTorch
  training step of the same mode, steps, variant, size and batch (`benchmarks/official.py`;
  `onestep`, `correction6`, `ift`: the official code has no BPTT) in its own fresh process,
  one warm-up and `--iters` timed steps; its `peak_rss_mb` and `step_s` are measured the same way.

The parent prints one JSON object (also written to `--out`) and a table, with ratios against
BPTT at 12 steps and, with `--official`, ours / official of the same run.

    PYTHONPATH=$PWD python benchmarks/train_memory.py [--modes onestep,correction6,ift,bptt]
        [--steps 12,24,48] [--variant B] [--size 368,496] [--batch 1] [--iters 2]
        [--remat none|encoders|all] [--compute-dtype float32|bfloat16] [--cpu-memory-scheduler]
        [--official PATH] [--out runs/bench/train_memory.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)

# XLA:CPU schedules for concurrency by default; this flag selects its memory-minimising
# scheduler instead (measured: 20-25 % less temp memory, a few % slower steps).
MEMORY_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"



# ----------------------------------------------------------------------------- child
def _read_status_kb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def run_official(path: str, mode: str, steps: int, variant: str, size, batch: int, iters: int,
                 solver: str, seed: int) -> dict:
    """The official training step of `mode` in this (fresh) process: warm-up, `iters` timed steps."""
    sys.path.insert(0, _HERE)
    import official

    step, _ = official.make_train_step(path, mode, steps, variant=variant, size=size, batch=batch,
                                       solver=solver, device="cpu", seed=seed)
    rss_before = _read_status_kb("VmRSS") / 1024
    t0 = time.perf_counter()
    step()
    first_s = time.perf_counter() - t0
    times, loss = [], None
    for _ in range(iters):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    return {"mode": mode, "steps": steps, "variant": variant, "size": list(size), "batch": batch,
            "solver": solver, "impl": "official", "first_step_s": first_s,
            "step_s": statistics.median(times),
            "step_times_s": times, "loss": loss, "rss_before_steps_mb": rss_before,
            "peak_rss_mb": _max_rss_mb(), "torch_threads": __import__("torch").get_num_threads()}


def run_child(phase: str, mode: str, steps: int, variant: str, size, batch: int, iters: int,
              solver: str, seed: int, remat: str = "none", compute_dtype: str = "float32") -> dict:
    """One phase of one (mode, steps) measurement, in a fresh process.

    phase `compile`: lowers and compiles the step (filling the persistent compilation cache
    named by `JAX_COMPILATION_CACHE_DIR`); reports compile time, `memory_analysis()` and the
    compiling process's peak RSS. phase `run`: loads the compiled step from that cache, runs
    one warm-up and `iters` timed steps; its peak RSS is the training step's, without
    compilation.
    """
    import jax
    import numpy as np

    sys.path.insert(0, _HERE)
    from train_memory_step import make_step

    step, params, opt_state, data = make_step(mode, steps, variant=variant, size=size, batch=batch,
                                              solver=solver, seed=seed, remat=remat,
                                              compute_dtype=compute_dtype)
    jitted = jax.jit(step, donate_argnums=(0, 1))
    t0 = time.perf_counter()
    compiled = jitted.lower(params, opt_state, data).compile()
    compile_s = time.perf_counter() - t0
    out = {"mode": mode, "steps": steps, "variant": variant, "size": list(size), "batch": batch,
           "solver": solver if mode != "bptt" else None, "remat": remat,
           "compute_dtype": compute_dtype, "xla_flags": os.environ.get("XLA_FLAGS", "")}
    if phase == "compile":
        ma = compiled.memory_analysis()
        mem = {k: int(getattr(ma, k, 0) or 0) for k in (
            "temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
            "alias_size_in_bytes", "generated_code_size_in_bytes")}
        n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))
        return out | {"compile_s": compile_s, "temp_mb": mem["temp_size_in_bytes"] / 2**20,
                      "memory_analysis": mem, "params": n_params, "compile_peak_rss_mb": _max_rss_mb()}
    rss_before = _read_status_kb("VmRSS") / 1024
    t0 = time.perf_counter()
    params, opt_state, loss = compiled(params, opt_state, data)
    loss = float(jax.block_until_ready(loss))
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        params, opt_state, loss = compiled(params, opt_state, data)
        loss = float(jax.block_until_ready(loss))
        times.append(time.perf_counter() - t0)
    return out | {"cache_load_s": compile_s, "first_step_s": first_s, "step_s": float(np.median(times)),
                  "step_times_s": times, "loss": loss, "rss_before_steps_mb": rss_before,
                  "peak_rss_mb": _max_rss_mb()}


def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------- parent
def _spawn(phase, mode, steps, args, cache_dir) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", f"{phase}:{mode}", "--steps", str(steps),
           "--variant", args.variant, "--size", args.size, "--batch", str(args.batch),
           "--iters", str(args.iters), "--solver", args.solver, "--seed", str(args.seed),
           "--remat", args.remat, "--compute-dtype", args.compute_dtype]
    if phase == "official":
        cmd += ["--official", args.official]
    env = dict(os.environ)
    if args.cpu_memory_scheduler:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + MEMORY_SCHEDULER_FLAG).strip()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
    env["JAX_COMPILATION_CACHE_DIR"] = cache_dir
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=_ROOT)
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"mode": mode, "steps": steps, "error": f"{phase} phase, exit {proc.returncode}: {tail}"}
    out = json.loads(lines[-1])
    out[f"{phase}_wall_s"] = wall
    return out


def measure(mode, steps, args, cache_dir, run: bool = True) -> dict:
    """Compile phase then (if `run`) run phase of one (mode, steps), merged into one record."""
    res = _spawn("compile", mode, steps, args, cache_dir)
    if "error" in res or not run:
        return res
    run = _spawn("run", mode, steps, args, cache_dir)
    if "error" in run:
        return run
    return res | run


def measure_official(mode, steps, args, cache_dir) -> dict | None:
    """The official step of (mode, steps) in a fresh process, or None (no copy given, or BPTT)."""
    sys.path.insert(0, _HERE)
    import official

    if not args.official or mode not in official.TRAIN_MODES:
        return None
    return _spawn("official", mode, steps, args, cache_dir)


def _ratios(results: list, official: list = ()) -> dict:
    by = {f"{r['mode']}@{r['steps']}": r for r in results if "error" not in r}
    ratios = {}
    ref = by.get("bptt@12")
    for key, r in by.items():
        if ref is not None and r is not ref and not key.startswith("bptt"):
            ratios[f"temp: bptt@12 / {key}"] = ref["temp_mb"] / max(r["temp_mb"], 1e-9)
            if "peak_rss_mb" in ref and "peak_rss_mb" in r:
                ratios[f"peak RSS: bptt@12 / {key}"] = ref["peak_rss_mb"] / max(r["peak_rss_mb"], 1e-9)
    for mode in ("onestep", "correction6", "ift", "bptt"):
        a, b = by.get(f"{mode}@12"), by.get(f"{mode}@48")
        if a and b:
            ratios[f"temp: {mode}@48 / {mode}@12"] = b["temp_mb"] / max(a["temp_mb"], 1e-9)
    for off in official:
        key = f"{off['mode']}@{off['steps']}"
        r = by.get(key)
        if "error" not in off and r and "step_s" in r:
            ratios[f"step time: {key} / official"] = r["step_s"] / off["step_s"]
            ratios[f"peak RSS: {key} / official"] = r["peak_rss_mb"] / off["peak_rss_mb"]
    return ratios


def _table(results: list, ratios: dict, official: list = ()) -> str:
    head = (f"{'mode':<12} {'steps':>5} {'temp MB':>9} {'args MB':>8} {'peak RSS MB':>11} "
            f"{'step s':>7} {'compile s':>9} {'compile RSS MB':>14}")
    rows = [head, "-" * len(head)]
    for r in results:
        if "error" in r:
            rows.append(f"{r['mode']:<12} {r['steps']:>5}  ERROR {r['error'][-300:]}")
            continue
        rows.append(f"{r['mode']:<12} {r['steps']:>5} {r['temp_mb']:>9.1f} "
                    f"{r['memory_analysis']['argument_size_in_bytes'] / 2**20:>8.1f} "
                    f"{r.get('peak_rss_mb', float('nan')):>11.0f} {r.get('step_s', float('nan')):>7.2f} "
                    f"{r['compile_s']:>9.1f} "
                    f"{r['compile_peak_rss_mb']:>14.0f}")
    for r in official:
        if "error" in r:
            rows.append(f"{'official':<12} {r['mode']}@{r['steps']} ERROR {r['error'][-300:]}")
        else:
            rows.append(f"{'official':<12} {r['steps']:>5} {'':>9} {'':>8} {r['peak_rss_mb']:>11.0f} "
                        f"{r['step_s']:>7.2f}   ({r['mode']}, torch, {r['torch_threads']} threads)")
    rows.append("")
    rows += [f"{k:<44} {v:.2f}" for k, v in ratios.items() if v is not None]
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default="onestep,correction6,ift,bptt")
    p.add_argument("--steps", default="12,24,48", help="solver / unroll steps, comma-separated")
    p.add_argument("--variant", default="B")
    p.add_argument("--size", default="368,496", help="H,W (multiples of 8)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--solver", default="anderson", help="forward solver of the DEQ modes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--remat", default="none", choices=("none", "encoders", "all"),
                   help="ModelConfig.remat of every measured step")
    p.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"),
                   help="ModelConfig.compute_dtype (bfloat16 = mixed precision)")
    p.add_argument("--cpu-memory-scheduler", action="store_true",
                   help=f"run the children with XLA_FLAGS+={MEMORY_SCHEDULER_FLAG}")
    p.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that this script wrote")
    p.add_argument("--run", default="all",
                   help="which MODE@STEPS also get the run phase (step time, peak RSS): 'all', "
                        "'none' or a comma-separated list, e.g. correction6@24,bptt@12")
    p.add_argument("--official", default=os.environ.get("DEQ_FLOW_OFFICIAL"),
                   help="path to a local copy of the official code.v.2.0: its training step of "
                        "each measured mode (not bptt) is timed in the same run (needs torch)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    size = tuple(int(s) for s in args.size.split(","))
    if len(size) != 2 or size[0] % 8 or size[1] % 8:
        p.error(f"--size must be H,W with multiples of 8, got {args.size!r}")
    if args.official and not os.path.isfile(os.path.join(args.official, "core", "deq_flow.py")):
        p.error(f"--official {args.official}: no core/deq_flow.py there (expected code.v.2.0)")
    if args.child:
        phase, mode = args.child.split(":")
        if phase == "official":
            print(json.dumps(run_official(args.official, mode, int(args.steps), args.variant, size,
                                          args.batch, args.iters, args.solver, args.seed)), flush=True)
            return 0
        res = run_child(phase, mode, int(args.steps), args.variant, size, args.batch, args.iters,
                        args.solver, args.seed, args.remat, args.compute_dtype)
        print(json.dumps(res), flush=True)
        return 0
    if args.out:       # checked before any work: never replaces a file this script did not write
        from deq_flow_jax.io.outputs import OutputError, check_output_file, json_field
        try:
            check_output_file(args.out, args.overwrite, "--out",
                              is_ours=lambda path: json_field(path, "benchmark") == "train_memory")
        except OutputError as err:
            print(f"benchmarks/train_memory.py: error: {err}", file=sys.stderr)
            return 2
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in ("onestep", "correction6", "ift", "bptt")]
    if bad:
        p.error(f"unknown mode(s) {bad}")
    steps = [int(s) for s in args.steps.split(",") if s]
    results, official = [], []
    with tempfile.TemporaryDirectory(prefix="deq_flow_bench_cache_") as cache_dir:
        for mode in modes:
            for n in steps:
                run = args.run == "all" or f"{mode}@{n}" in args.run.split(",")
                r = measure(mode, n, args, cache_dir, run=run)
                results.append(r)
                print(f"# {mode}@{n}: " + ("ERROR " + r["error"][-500:] if "error" in r else
                      f"temp {r['temp_mb']:.0f} MB, compile {r['compile_s']:.1f} s" +
                      (f", peak RSS {r['peak_rss_mb']:.0f} MB, {r['step_s']:.2f} s/step" if run else "")),
                      file=sys.stderr, flush=True)
                off = measure_official(mode, n, args, cache_dir) if run else None
                if off is not None:
                    official.append(off)
                    print(f"# official {mode}@{n}: " + ("ERROR " + off["error"][-500:] if "error" in off
                          else f"peak RSS {off['peak_rss_mb']:.0f} MB, {off['step_s']:.2f} s/step"),
                          file=sys.stderr, flush=True)
    ratios = _ratios(results, official)
    report = {"benchmark": "train_memory", "results": results, "ratios": ratios, "official": official,
              "remat": args.remat, "compute_dtype": args.compute_dtype,
              "cpu_memory_scheduler": args.cpu_memory_scheduler,
              "cpu_count": os.cpu_count()}
    from deq_flow_jax.io.common import atomic_write_text, dumps_json
    text = dumps_json(report, indent=2)
    print(text)
    print(_table(results, ratios, official))
    if args.out:
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
