"""`deq-flow ablate`: IFT vs IFT + Jacobian regularisation vs fixed-point correction.

    deq-flow ablate --config deq_flow_jax/configs/ablation.py --workdir runs/ablation \\
        [--config.num_steps=200] [--config.ablation.jac_weight=5.0] \\
        [--parallel] [--settings ift,correction] [--noprobe] [--collect_only]

Trains the three settings of `deq_flow_jax/configs/ablation.py` with identical seeds, data
and budgets (see `deq_flow_jax/ablation/`), then writes `summary.md`, `summary.json`,
`ablation.csv`, `ablation.jsonl` and `fig1.png` into the workdir and prints the summary
table. Rerunning the same command resumes every setting from its checkpoints. Use
`--config deq_flow_jax/configs/ablation.py:chairs` for FlyingChairs.
"""
from __future__ import annotations

import os
import sys

from absl import flags
from ml_collections import config_flags

from deq_flow_jax.cli.config_args import parse_flags


def _flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "ablation config file, optionally with `:ARG` (synthetic | chairs)",
        flag_values=fv, lock_config=True)
    flags.DEFINE_string("workdir", None, "ablation workdir (one sub-folder per setting)", flag_values=fv)
    flags.DEFINE_bool("parallel", False, "train the settings in parallel child processes", flag_values=fv)
    flags.DEFINE_string("settings", None, "comma-separated subset of ift,ift_jac,correction", flag_values=fv)
    flags.DEFINE_bool("probe", True, "measure final ||J||_F^2 and spectral radius per setting", flag_values=fv)
    flags.DEFINE_bool("collect_only", False, "no training: rebuild tables, figure and summary from the logs",
                      flag_values=fv)
    return fv


def main(argv: list[str]) -> int:
    fv, stop = parse_flags("deq-flow ablate", _flags, argv, __doc__)
    if stop is not None:
        return stop
    from deq_flow_jax.ablation.runner import run_ablation

    workdir = os.path.abspath(fv.workdir)
    try:
        run_ablation(fv.config, workdir, parallel=fv.parallel, only=fv.settings, probe=fv.probe,
                     train=not fv.collect_only)
    except ValueError as e:
        print(f"deq-flow ablate: {e}", file=sys.stderr)
        return 2
    with open(os.path.join(workdir, "summary.md"), encoding="utf-8") as fh:
        print(fh.read())
    print(f"figure: {os.path.join(workdir, 'fig1.png')}")
    return 0
