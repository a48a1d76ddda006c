"""Runs the ablation: one training run per setting, then tables, figure and summary.

Layout of an ablation workdir `DIR`:

    DIR/ablation_config.json      the shared config (before the per-setting overrides)
    DIR/<setting>/                a normal training workdir (config.json, checkpoints/,
                                  train.jsonl, tb/) plus log.csv, diagnostics.json,
                                  run_info.json (wall time, final metrics) and, for
                                  parallel runs, stdout.log
    DIR/ablation.jsonl|csv        every run's log lines with a `setting` column
    DIR/summary.json|md           per-setting numbers and the paper's findings checked
    DIR/fig1.png                  (a) forward relative residual, (b) validation EPE

Settings run one after another in this process, or in parallel child processes
(`parallel=True`, one `python -m deq_flow_jax.ablation.worker` per setting). Rerunning on
the same workdir resumes every setting from its latest checkpoint (the training loop's
resume); a finished setting only re-runs its final validation.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Sequence

import ml_collections

from deq_flow_jax.ablation import collect as collect_lib
from deq_flow_jax.ablation.settings import LABELS, selected_settings, setting_config
from deq_flow_jax.io.common import dumps_json
from deq_flow_jax.io.outputs import claim_workdir, is_train_workdir, json_object

# the directory that holds this deq_flow_jax package: child workers import the same copy
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_to_json(config: ml_collections.ConfigDict) -> str:
    """Serialises a config (tuples become JSON lists; see `config_from_json`)."""
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def _tuplify(obj):
    if isinstance(obj, dict):
        return {k: _tuplify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return tuple(_tuplify(v) for v in obj)
    return obj


def config_from_json(text: str) -> ml_collections.ConfigDict:
    """Inverse of `config_to_json`: JSON lists come back as tuples (crop sizes, indices)."""
    return ml_collections.ConfigDict(_tuplify(json.loads(text)))


def run_setting(config: ml_collections.ConfigDict, run_dir: str, *, probe: bool = True) -> dict:
    """Trains (or resumes) one setting in `run_dir`, then probes the final model.

    Returns:
      The run info written to `run_dir/run_info.json`: `setting`, `wall_s` (this
      invocation), `final` (validation metrics from `train_and_evaluate`), `diagnostics`.
    """
    from deq_flow_jax.train import train_and_evaluate

    os.makedirs(run_dir, exist_ok=True)
    t0 = time.time()
    final = train_and_evaluate(config, run_dir)
    train_s = time.time() - t0
    diagnostics = {}
    if probe:
        from deq_flow_jax.ablation.probe import final_diagnostics

        diagnostics = final_diagnostics(config, run_dir)
        collect_lib.atomic_write_text(os.path.join(run_dir, "diagnostics.json"),
                                      dumps_json(collect_lib._jsonable(diagnostics), indent=2) + "\n")
    info = {
        "setting": config.ablation.get("setting", os.path.basename(run_dir)),
        "train_wall_s": train_s,
        "wall_s": time.time() - t0,
        "final": {k: float(v) for k, v in dict(final or {}).items() if _is_number(v)},
        "diagnostics": diagnostics,
    }
    collect_lib.atomic_write_text(os.path.join(run_dir, "run_info.json"),
                                  dumps_json(collect_lib._jsonable(info), indent=2) + "\n")
    return info


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _is_ablation_workdir(path: str) -> bool:
    """An ablation workdir from before io.outputs.WORKDIR_MARKER: it holds ablation_config.json."""
    return json_object(os.path.join(path, "ablation_config.json")) is not None


def _is_setting_dir(path: str) -> bool:
    """A setting's folder from before the marker: its ablation_setting.json or a training workdir."""
    return json_object(os.path.join(path, "ablation_setting.json")) is not None or is_train_workdir(path)


def _stop_workers(procs: dict, grace_s: float = 60.0) -> None:
    """SIGTERM to every worker still running, then SIGKILL to any left after `grace_s`.

    A worker stopped this way resumes from its latest checkpoint on the next run."""
    running = [proc for proc, _ in procs.values() if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for _, log in procs.values():
        log.close()


def _run_parallel(configs: dict, workdir: str, probe: bool) -> None:
    procs = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    for name, cfg in configs.items():
        run_dir = os.path.join(workdir, name)
        os.makedirs(run_dir, exist_ok=True)
        cfg_path = os.path.join(run_dir, "ablation_setting.json")
        collect_lib.atomic_write_text(cfg_path, config_to_json(cfg))
        # --parent-pid: the worker stops if this process dies, even by SIGKILL.
        cmd = [sys.executable, "-m", "deq_flow_jax.ablation.worker", cfg_path, run_dir,
               f"--parent-pid={os.getpid()}"]
        if not probe:
            cmd.append("--no-probe")
        log = open(os.path.join(run_dir, "stdout.log"), "a", encoding="utf-8")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        print(f"[ablate] started {name} (pid {procs[name][0].pid}), log: {log.name}", flush=True)
    failed = []
    try:
        for name, (proc, log) in procs.items():
            rc = proc.wait()
            log.close()
            print(f"[ablate] {name} finished with exit status {rc}", flush=True)
            if rc != 0:
                failed.append(f"{name} (exit {rc}, see {log.name})")
    except BaseException:
        # The SIGTERM the CLI turns into an exception reaches this process alone (`kill PID`):
        # without this the workers would train on, orphaned, after the command said it had
        # stopped. (Ctrl-C in a terminal reaches the workers too; stopping them again is harmless.)
        _stop_workers(procs)
        raise
    if failed:
        raise RuntimeError("ablation settings failed: " + "; ".join(failed))


def run_ablation(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    parallel: bool = False,
    only: str | None = None,
    probe: bool = True,
    train: bool = True,
) -> dict:
    """Trains the selected settings and writes tables, `fig1.png` and `summary.md`.

    Args:
      config: the ablation config (`deq_flow_jax/configs/ablation.py`, after overrides).
      workdir: the ablation workdir (created if missing; reused to resume).
      parallel: run settings in parallel child processes instead of one after another.
      only: comma-separated subset of settings (default: `config.ablation.settings`).
      probe: compute final ||J||_F^2 and spectral radius of every trained model.
      train: False re-reads the existing logs and rewrites tables, figure and summary only.

    Returns:
      setting -> summary numbers (also in `workdir/summary.json`).
    """
    names: Sequence[str] = selected_settings(config, only)
    configs = {name: setting_config(config, name) for name in names}
    t0 = time.time()
    if not train:
        missing = [n for n in names if not os.path.exists(os.path.join(workdir, n, "train.jsonl"))]
        if missing:
            raise ValueError(f"{workdir}: no training log for setting(s) {', '.join(missing)}")
    claim_workdir(workdir, "ablate", legacy=_is_ablation_workdir)
    if train:
        for name in names:
            claim_workdir(os.path.join(workdir, name), "ablate",
                          flag=f"--workdir (its setting folder {name})", legacy=_is_setting_dir)
        collect_lib.atomic_write_text(os.path.join(workdir, "ablation_config.json"), config_to_json(config))
        if parallel:
            _run_parallel(configs, workdir, probe)
        else:
            for name, cfg in configs.items():
                print(f"[ablate] setting {name}: {LABELS[name]}", flush=True)
                run_setting(cfg, os.path.join(workdir, name), probe=probe)
    wall = time.time() - t0
    runs, summary = collect_lib.collect(workdir, names)
    from deq_flow_jax.train.curves import plot_convergence_figure

    stage = config.data.get("stage", "?")
    title = (f"{stage}, variant {config.model.get('variant', '?')}, {config.num_steps} steps, "
             f"Anderson {config.deq.f_max_steps} steps")
    plot_convergence_figure(runs, os.path.join(workdir, "fig1.png"), labels=LABELS, title=title)
    info = [os.path.join(workdir, n, "run_info.json") for n in names]
    walls = [collect_lib.read_json(p)["wall_s"] for p in info if os.path.exists(p)]
    how = "parallel" if parallel else "sequential"
    wall_text = (f"wall time {wall:.0f} s ({how})" if train else
                 f"per-setting wall times {', '.join(f'{w:.0f}' for w in walls)} s (tables rebuilt from the logs)")
    header = f"# Ablation summary\n\n{title}; {wall_text}.\n"
    collect_lib.atomic_write_text(os.path.join(workdir, "summary.md"),
                                  collect_lib.summary_markdown(summary, header=header))
    return summary
