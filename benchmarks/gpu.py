"""The prepared GPU benchmark (issue 14): inference and training speed, memory, and the official code.

    PYTHONPATH=$PWD python benchmarks/gpu.py [--out benchmarks/results] [--official PATH]
        [--budget-s 450] [--dry-run]

One run, end to end in about `--budget-s` seconds (default 450, for an 8-minute window on one
H200), writes one JSON file `<out>/gpu_<device>_<UTC date>.json` (`_2`, `_3`, ... appended when
that name is taken; an existing `--out FILE.json` is refused: nothing is ever replaced that
this run did not write; rewritten atomically after every measurement, so a run stopped from
outside still leaves what it measured) and prints a
markdown table. Sections, in this order, each with a share of the budget (what a section does
not use passes to the next; a measurement that would start past its section's deadline is
recorded as skipped; a child still running at the deadline is killed):

1. `inference` (35 %): `estimate_flow` (random weights) at Sintel size 436x1024 (padded to
   440x1024), variants B and H, batch 1 and 8, exactly 12 and 32 Anderson steps (tol 0), float32:
   pairs per second, seconds per solver iteration = (t32 - t12) / 20, compile time = first
   call - steady call.
2. `train` (30 %): one training step (forward, loss, gradient, AdamW update;
   `benchmarks/train_memory_step.make_step`) at B, 368x496, batch 6 (one device): `chairs` =
   `correction6` (36 Anderson steps, 6 fixed-point correction terms, one-step phantom gradient
   each), `ift` (36 Anderson steps, Broyden backward solve of 36 steps) and the project's own
   12-step BPTT: step seconds, pairs per second, peak device memory
   (`memory_stats()["peak_bytes_in_use"]`, each mode in a fresh process; on the CPU the peak
   RSS), compile time and XLA's `memory_analysis()`.
3. `official` (15 %, only with `--official`): the official PyTorch code (a local copy of
   code.v.2.0, never part of this repository) timed the same way in its own process: inference
   at batch 1 and 8 (float32) and the `chairs` and `ift` training steps (peak
   `torch.cuda.max_memory_allocated`); ratios ours / official.
4. `inference_bf16` (20 %): section 1 with `compute_dtype="bfloat16"`.

`--dry-run` runs the same code path on the CPU with tiny sizes (variant tiny, 128x128, batch 2,
2 and 3 solver steps, training with 2; XLA's backend optimisation off for faster compiles), so
the suite can check that the script works while no GPU is at hand (`--only` picks jobs, e.g.
`--only inference:float32,train:chairs:correction6`).

It imports only what a standard CUDA JAX environment holds (jax, flax, optax, numpy; torch for
`--official`); never tensorflow_datasets, grain or ml_collections. The parent process does not
import JAX (it would take the GPU's memory from the children).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

_UMASK = os.umask(0o022)   # read once at import (single-threaded), restored at once
os.umask(_UMASK)

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)

FULL = {"size": (436, 1024), "variants": ("B", "H"), "batches": (1, 8), "steps": (12, 32), "repeats": 5,
            "train_variant": "B", "train_size": (368, 496), "train_batch": 6, "train_steps": 36,
            "bptt_steps": 12, "train_iters": 5}
DRY = {"size": (128, 128), "variants": ("tiny",), "batches": (2,), "steps": (2, 3), "repeats": 1,
           "train_variant": "tiny", "train_size": (128, 128), "train_batch": 2, "train_steps": 2,
           "bptt_steps": 2, "train_iters": 1}
# (section, share of the budget); jobs of each section are listed in `plan`.
SECTIONS = (("inference", 0.35), ("train", 0.30), ("official", 0.15), ("inference_bf16", 0.20))
# name in the JSON -> train_memory_step mode
TRAIN_MODES = (("chairs", "correction6"), ("ift", "ift"), ("bptt", "bptt"))


# ----------------------------------------------------------------------------- children
def _emit(rec: dict) -> None:
    print("@@" + json.dumps(rec), flush=True)


def _med(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _timed(fn, repeats):
    """(median, min) wall seconds over `repeats` calls of `fn` (which blocks on its result)."""
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return _med(ts), min(ts)


def child_probe(cfg, deadline):
    import jax

    d = jax.devices()[0]
    _emit({"kind": "probe", "platform": d.platform, "device_kind": d.device_kind,
           "device_count": jax.device_count(), "jax": jax.__version__})


def child_inference(cfg, deadline, dtype):
    """Our `estimate_flow` for every variant and batch of `cfg`, both step counts."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from deq_flow_jax.model import ModelConfig, estimate_flow, init_model

    h, w = cfg["size"]
    lo, hi = cfg["steps"]
    for variant in cfg["variants"]:
        mcfg = ModelConfig.variant(variant, compute_dtype=dtype)
        v = init_model(mcfg, jax.random.PRNGKey(0))
        for batch in cfg["batches"]:
            base = {"kind": "inference", "impl": "jax", "variant": variant, "dtype": dtype,
                    "batch": batch, "size": [h, w]}
            if time.time() > deadline:
                _emit(base | {"skipped": "section deadline"})
                continue
            rng = np.random.default_rng(0)
            im1 = jnp.asarray(rng.uniform(0, 255, (batch, h, w, 3)), jnp.float32)
            im2 = jnp.roll(im1, (2, 3), axis=(1, 2))
            rec = dict(base)
            for n in (lo, hi):
                def run(v=v, mcfg=mcfg, im1=im1, im2=im2, n=n):
                    return jax.block_until_ready(estimate_flow(
                        v, mcfg, im1, im2, solver="anderson", max_steps=n, tol=0.0).flow)
                t = time.perf_counter()
                run()
                first = time.perf_counter() - t
                med, best = _timed(run, cfg["repeats"])
                rec |= {f"forward_s_{n}": med, f"forward_min_s_{n}": best,
                        f"compile_s_{n}": max(first - med, 0.0), f"pairs_per_s_{n}": batch / med}
            rec["per_iter_s"] = (rec[f"forward_s_{hi}"] - rec[f"forward_s_{lo}"]) / (hi - lo)
            rec["fixed_s"] = rec[f"forward_s_{lo}"] - lo * rec["per_iter_s"]
            _emit(rec)


def _peak_memory_mb(device):
    """Peak device memory in MB (`peak_bytes_in_use`), or the process's peak RSS where the
    backend keeps no statistics (CPU); -> (value, source)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20, "peak_bytes_in_use"
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "peak_rss"


def child_train(cfg, deadline, name, mode):
    """One of our training steps (fresh process, so the peak memory is this step's)."""
    import jax
    import numpy as np

    sys.path.insert(0, _HERE)
    from train_memory_step import make_step

    steps = cfg["bptt_steps"] if mode == "bptt" else cfg["train_steps"]
    batch = cfg["train_batch"]
    base = {"kind": "train", "impl": "jax", "setting": name, "mode": mode, "steps": steps,
            "variant": cfg["train_variant"], "batch": batch, "size": list(cfg["train_size"])}
    step, params, opt_state, data = make_step(mode, steps, variant=cfg["train_variant"],
                                              size=tuple(cfg["train_size"]), batch=batch)
    t = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, data).compile()
    compile_s = time.perf_counter() - t
    ma = compiled.memory_analysis()
    mem = {k: int(getattr(ma, k, 0) or 0) for k in (
        "temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")} if ma else {}
    params, opt_state, loss = compiled(params, opt_state, data)      # warm-up
    jax.block_until_ready(loss)
    times = []
    for _ in range(cfg["train_iters"]):
        if time.time() > deadline and times:
            break
        t = time.perf_counter()
        params, opt_state, loss = compiled(params, opt_state, data)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - t)
    peak, source = _peak_memory_mb(jax.devices()[0])
    step_s = float(np.median(times))
    _emit(base | {"compile_s": compile_s, "step_s": step_s, "step_times_s": times,
                  "pairs_per_s": batch / step_s, "peak_mb": peak, "peak_source": source,
                  "memory_analysis": mem, "loss": float(loss)})


def child_official(cfg, deadline, path):
    """The official code: inference (float32) and the chairs / ift training steps."""
    import torch

    sys.path.insert(0, _HERE)
    import official as O

    dev = O.device_of("auto")
    h, w = cfg["size"]
    lo, hi = cfg["steps"]
    for variant in cfg["variants"]:
        for batch in cfg["batches"]:
            base = {"kind": "inference", "impl": "official", "variant": variant, "dtype": "float32",
                    "batch": batch, "size": [h, w], "device": str(dev)}
            if time.time() > deadline:
                _emit(base | {"skipped": "section deadline"})
                continue
            # the official code needs H, W multiples of 8: pad as estimate_flow does
            size = (-(-h // 8) * 8, -(-w // 8) * 8)
            times = O.inference_times(path, variant, size, (lo, hi), batch=batch,
                                      repeats=cfg["repeats"], device=str(dev))
            rec = dict(base, padded_size=list(size))
            for n in (lo, hi):
                rec |= {f"forward_s_{n}": times[n][0], f"pairs_per_s_{n}": batch / times[n][0]}
            rec["per_iter_s"] = (rec[f"forward_s_{hi}"] - rec[f"forward_s_{lo}"]) / (hi - lo)
            rec["fixed_s"] = rec[f"forward_s_{lo}"] - lo * rec["per_iter_s"]
            _emit(rec)
    for name, mode in TRAIN_MODES:
        if mode not in O.TRAIN_MODES:
            continue
        base = {"kind": "train", "impl": "official", "setting": name, "mode": mode,
                "steps": cfg["train_steps"], "variant": cfg["train_variant"],
                "batch": cfg["train_batch"], "size": list(cfg["train_size"]), "device": str(dev)}
        if time.time() > deadline:
            _emit(base | {"skipped": "section deadline"})
            continue
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step, _ = O.make_train_step(path, mode, cfg["train_steps"], variant=cfg["train_variant"],
                                    size=tuple(cfg["train_size"]), batch=cfg["train_batch"],
                                    device=str(dev))
        step()                                                       # warm-up
        times = []
        for _ in range(cfg["train_iters"]):
            if time.time() > deadline and times:
                break
            O.sync(dev)
            t = time.perf_counter()
            loss = step()
            O.sync(dev)
            times.append(time.perf_counter() - t)
        if dev.type == "cuda":
            peak, source = torch.cuda.max_memory_allocated(dev) / 2**20, "max_memory_allocated"
        else:
            import resource
            peak, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "peak_rss"
        step_s = _med(times)
        _emit(base | {"step_s": step_s, "step_times_s": times, "pairs_per_s": cfg["train_batch"] / step_s,
                      "peak_mb": peak, "peak_source": source, "loss": loss})


# ----------------------------------------------------------------------------- parent
def plan(official: str | None):
    """[(section, job)] in run order; a job is the `--child` argument of one child process."""
    jobs = [("inference", "inference:float32")]
    jobs += [("train", f"train:{name}:{mode}") for name, mode in TRAIN_MODES]
    if official:
        jobs.append(("official", "official"))
    jobs.append(("inference_bf16", "inference:bfloat16"))
    return jobs


class Run:
    """Collects the children's records and rewrites the JSON file after each one."""

    def __init__(self, args, cfg):
        self.args, self.cfg = args, cfg
        self.records, self.path, self.probe = [], None, None
        self.started = time.time()
        self.date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
        if self.args.dry_run:       # a check of the code path: its timings mean nothing, so
            env["JAX_PLATFORMS"] = "cpu"             # LLVM's optimisation is off (faster compiles)
            env["CUDA_VISIBLE_DEVICES"] = ""
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
        return env

    def child(self, job: str, deadline: float, kill_at: float) -> str:
        """Runs one child; its records arrive line by line. Returns 'ok', 'killed' or the error."""
        cmd = [sys.executable, os.path.abspath(__file__), "--child", job, "--deadline", repr(deadline)]
        if self.args.dry_run:
            cmd.append("--dry-run")
        if self.args.official:
            cmd += ["--official", self.args.official]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(), cwd=_ROOT)
        lines, errs = queue.Queue(), []
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] + [lines.put(None)],
                         daemon=True).start()
        threading.Thread(target=lambda: errs.extend(proc.stderr), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=max(kill_at - time.time(), 0.01))
            except queue.Empty:
                proc.kill()
                proc.wait()
                self.add({"kind": "killed", "job": job, "reason": "deadline reached while running"})
                return "killed"
            if line is None:
                break
            if line.startswith("@@"):
                self.add(json.loads(line[2:]) | {"job": job})
        rc = proc.wait()
        if rc != 0:
            tail = "".join(errs)[-1500:]
            self.add({"kind": "error", "job": job, "exit": rc, "stderr_tail": tail})
            print(f"# {job}: exit {rc}\n{tail}", file=sys.stderr, flush=True)
            return f"exit {rc}"
        return "ok"

    def add(self, rec: dict):
        if rec.get("kind") == "probe":
            self.probe = rec
        self.records.append(rec)
        print(f"# {time.time() - self.started:6.1f} s  {_brief(rec)}", file=sys.stderr, flush=True)
        self.write()

    def report(self) -> dict:
        p = self.probe or {}
        return {"benchmark": "gpu", "dry_run": self.args.dry_run, "date": self.date,
                "device_kind": p.get("device_kind"), "platform": p.get("platform"),
                "jax": p.get("jax"), "config": self.cfg, "budget_s": self.args.budget_s,
                "sections": dict(SECTIONS), "official": bool(self.args.official),
                "elapsed_s": time.time() - self.started, "records": self.records,
                "ratios": ratios(self.records)}

    def write(self):
        if self.path is None:
            if self.probe is None:
                return
            dev = re.sub(r"[^a-z0-9]+", "_", (self.probe.get("device_kind") or "unknown").lower())
            name = f"gpu_{dev.strip('_')}_{self.date}{'_dry' if self.args.dry_run else ''}.json"
            self.path = (self.args.out if self.args.out.endswith(".json")
                         else free_path(os.path.join(self.args.out, name)))
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        folder, base = os.path.split(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.report(), fh, indent=1)
                fh.write("\n")
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, self.path)     # only ever this run's own file (main checks --out)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def free_path(path: str) -> str:
    """`path`, or the first of `stem_2.json`, `stem_3.json`, ... that does not exist: a second
    run on the same day never replaces the first one's file."""
    stem, ext = os.path.splitext(path)
    candidate, n = path, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{stem}_{n}{ext}"
    return candidate


def _brief(rec):
    keys = ("kind", "impl", "variant", "setting", "dtype", "batch", "per_iter_s", "step_s",
            "peak_mb", "skipped", "reason", "exit")
    return " ".join(f"{k}={rec[k]:.4g}" if isinstance(rec[k], float) else f"{k}={rec[k]}"
                    for k in keys if k in rec)


def ratios(records) -> dict:
    """ours / official (same setting) and DEQ / BPTT (memory, time) from the records."""
    ok = [r for r in records if r.get("kind") in ("inference", "train") and "skipped" not in r]
    key = lambda r: (r["kind"], r["variant"], r.get("dtype", "float32"), r["batch"],
                     r.get("setting"))
    off = {key(r): r for r in ok if r["impl"] == "official"}
    out = {}
    for r in ok:
        o = off.get(key(r))
        if r["impl"] != "jax" or o is None:
            continue
        tag = (f"{r['kind']} {r['variant']} b{r['batch']} {r.get('dtype', '')}".strip()
               if r["kind"] == "inference" else f"train {r['setting']}")
        fields = (("per_iter_s", "fixed_s") + tuple(k for k in r if k.startswith("forward_s_"))
                  if r["kind"] == "inference" else ("step_s", "peak_mb"))
        for f in fields:
            if f in o and o[f] > 0:
                out[f"{tag} {f} ours/official"] = r[f] / o[f]
    ours = {r["setting"]: r for r in ok if r["kind"] == "train" and r["impl"] == "jax"}
    if "bptt" in ours:
        for name in ("chairs", "ift"):
            if name in ours:
                for f in ("peak_mb", "step_s"):
                    out[f"train {name} {f} / bptt"] = ours[name][f] / ours["bptt"][f]
    return out


def table(report: dict) -> str:
    """Markdown tables of the report (inference, training, ratios)."""
    recs = [r for r in report["records"] if r.get("kind") in ("inference", "train")]
    lo, hi = report["config"]["steps"]
    rat = report["ratios"]
    out = [(f"device: {report.get('device_kind')} (jax {report.get('jax')}), "
           f"{'DRY RUN, ' if report['dry_run'] else ''}elapsed {report['elapsed_s']:.0f} s"), "",
           (f"| impl | variant | dtype | batch | pairs/s @{lo} | pairs/s @{hi} | s / iteration "
           f"| fixed s | compile s @{hi} | per-iteration ours/official |"),
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        if r["kind"] != "inference":
            continue
        if "skipped" in r:
            out.append(f"| {r['impl']} | {r['variant']} | {r['dtype']} | {r['batch']} | skipped "
                       f"({r['skipped']}) | | | | | |")
            continue
        ratio = rat.get(f"inference {r['variant']} b{r['batch']} {r['dtype']} per_iter_s ours/official")
        comp = r.get(f"compile_s_{hi}")
        out.append(f"| {r['impl']} | {r['variant']} | {r['dtype']} | {r['batch']} | "
                   f"{r[f'pairs_per_s_{lo}']:.2f} | {r[f'pairs_per_s_{hi}']:.2f} | "
                   f"{r['per_iter_s']:.4f} | {r['fixed_s']:.3f} | "
                   f"{'' if comp is None else f'{comp:.1f}'} | "
                   f"{'' if ratio is None else f'{ratio:.2f}'} |")
    out += ["", ("| impl | setting | steps | batch | step s | pairs/s | peak MB | compile s "
                "| step ours/official | peak ours/official |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        if r["kind"] != "train":
            continue
        if "skipped" in r:
            out.append(f"| {r['impl']} | {r['setting']} | {r['steps']} | {r['batch']} | skipped "
                       f"| | | | | |")
            continue
        rs = rat.get(f"train {r['setting']} step_s ours/official")
        rm = rat.get(f"train {r['setting']} peak_mb ours/official")
        comp = f"{r['compile_s']:.1f}" if "compile_s" in r else ""
        out.append(f"| {r['impl']} | {r['setting']} | {r['steps']} | {r['batch']} | "
                   f"{r['step_s']:.3f} | {r['pairs_per_s']:.2f} | {r['peak_mb']:.0f} "
                   f"({r['peak_source']}) | {comp} | "
                   f"{'' if rs is None else f'{rs:.2f}'} | {'' if rm is None else f'{rm:.2f}'} |")
    problems = [r for r in report["records"] if r.get("kind") in ("error", "killed")]
    out += [""] + [f"- {r['kind']}: {r['job']} {r.get('reason', r.get('exit', ''))}" for r in problems]
    out += [f"- {k}: {v:.2f}" for k, v in rat.items() if "/ bptt" in k]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join("benchmarks", "results"),
                   help="folder for gpu_<device>_<date>.json, or a .json file name")
    p.add_argument("--official", default=os.environ.get("DEQ_FLOW_OFFICIAL"),
                   help="path to a local copy of the official code.v.2.0 (needs torch)")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="seconds for the whole run, shared by the sections")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: checks the code path")
    p.add_argument("--only", default=None,
                   help="comma-separated jobs to run (default all): " + ", ".join(
                       j for _, j in plan("PATH")))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cfg = DRY if a.dry_run else FULL
    if a.official and not os.path.isfile(os.path.join(a.official, "core", "deq_flow.py")):
        p.error(f"--official {a.official}: no core/deq_flow.py there (expected code.v.2.0)")
    if a.budget_s <= 0:
        p.error(f"--budget-s must be positive, got {a.budget_s}")
    if a.child:
        kind, *rest = a.child.split(":")
        deadline = a.deadline if a.deadline is not None else float("inf")
        if kind == "probe":
            child_probe(cfg, deadline)
        elif kind == "inference":
            child_inference(cfg, deadline, rest[0])
        elif kind == "train":
            child_train(cfg, deadline, rest[0], rest[1])
        elif kind == "official":
            child_official(cfg, deadline, a.official)
        else:
            p.error(f"unknown child job {a.child!r}")
        return 0

    if a.out.endswith(".json") and os.path.lexists(a.out):
        p.error(f"--out {a.out}: exists; not replaced (give a new file name, or a folder)")
    if not a.out.endswith(".json") and os.path.lexists(a.out) and not os.path.isdir(a.out):
        p.error(f"--out {a.out}: exists and is not a folder")
    run = Run(a, cfg)
    end = run.started + a.budget_s
    if run.child("probe", end, end) != "ok":
        print("the probe child failed: no device to measure", file=sys.stderr)
        return 1
    if not a.dry_run and run.probe["platform"] != "gpu":
        print(f"benchmarks/gpu.py: JAX sees no GPU (platform {run.probe['platform']!r}, "
              f"{run.probe['device_kind']!r}); the full sizes are for a GPU: use --dry-run on a CPU",
              file=sys.stderr)
        return 1
    jobs = plan(a.official)
    if a.only:
        wanted = a.only.split(",")
        unknown = [j for j in wanted if j not in [job for _, job in jobs]]
        if unknown:
            p.error(f"--only: unknown job(s) {unknown}; expected some of {[j for _, j in jobs]}")
        jobs = [j for j in jobs if j[1] in wanted]
    carry = 0.0
    for name, share in SECTIONS:
        t0 = time.time()
        deadline = min(t0 + share * a.budget_s + carry, end)
        for _, job in (j for j in jobs if j[0] == name):
            if time.time() >= deadline:
                run.add({"kind": "skipped", "job": job, "reason": "section deadline"})
                continue
            # A child stops starting measurements at the deadline; it is killed a little later.
            run.child(job, deadline, min(deadline + 0.1 * a.budget_s, end))
        carry = max(deadline - time.time(), 0.0)
    run.write()
    print(table(run.report()))
    print(f"\nwritten: {run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
