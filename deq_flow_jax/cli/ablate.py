"""`deq-flow ablate`: IFT vs IFT + Jacobian regularisation vs fixed-point correction.

    deq-flow ablate --config deq_flow_jax/configs/ablation.py --workdir runs/ablation \\
        [--config.num_steps=200] [--config.ablation.jac_weight=5.0] \\
        [--parallel] [--settings ift,correction] [--noprobe] [--collect_only]

Trains the three settings of `deq_flow_jax/configs/ablation.py` with identical seeds, data
and budgets (see `deq_flow_jax/ablation/`), then writes `summary.md`, `summary.json`,
`ablation.csv`, `ablation.jsonl` and `fig1.png` into the workdir and prints the summary
table. Rerunning the same command resumes every setting from its checkpoints. Use
`--config deq_flow_jax/configs/ablation.py:chairs` for FlyingChairs, `:layered` for the
shipped model's recipe on rendered scenes (docs/experiments.md).
"""
from __future__ import annotations

import argparse
import os

from deq_flow_jax.cli.common import ArgumentParser, run_command
from deq_flow_jax.cli.config_args import add_config_arg, parse_config_command


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow ablate", __doc__)
    add_config_arg(p, None, "ablation config file, optionally with `:ARG` "
                   "(synthetic | chairs | layered)")
    p.add_argument("--workdir", default=None, help="ablation workdir (one sub-folder per setting)")
    p.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=False,
                   help="train the settings in parallel child processes")
    p.add_argument("--settings", default=None, help="comma-separated subset of ift,ift_jac,correction")
    p.add_argument("--probe", action=argparse.BooleanOptionalAction, default=True,
                   help="measure final ||J||_F^2 and spectral radius per setting (--no-probe: skip)")
    p.add_argument("--noprobe", dest="probe", action="store_false", help=argparse.SUPPRESS)
    p.add_argument("--collect_only", action="store_true",
                   help="no training: rebuild tables, figure and summary from the logs")
    return p


def main(argv: list[str]) -> int:
    parse = lambda a: parse_config_command(build_parser(), a, ("config", "workdir"))  # noqa: E731
    return run_command("ablate", parse, argv, _run)


def _run(fv) -> int:
    from deq_flow_jax.ablation.runner import run_ablation

    workdir = os.path.abspath(fv.workdir)
    run_ablation(fv.config, workdir, parallel=fv.parallel, only=fv.settings, probe=fv.probe,
                 train=not fv.collect_only)
    with open(os.path.join(workdir, "summary.md"), encoding="utf-8") as fh:
        print(fh.read())
    print(f"figure: {os.path.join(workdir, 'fig1.png')}")
    return 0
