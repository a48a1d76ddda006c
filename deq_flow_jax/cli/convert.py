"""`deq-flow convert`: official PyTorch checkpoint -> a model directory loadable everywhere.

    deq-flow convert deq-flow-H-things-test-3x.pth out_dir --variant H [--gma] [--old-version]
        [--overwrite]

Prints the variant and its parameter count, then the output directory. A checkpoint of
another variant fails with an error naming the first mismatching key and both shapes.
`out_dir` must not exist, be an empty folder, or (with --overwrite) hold a model written
by deq-flow.
"""
from __future__ import annotations

import argparse

from deq_flow_jax.cli.common import ArgumentParser, run_command


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="B",
                   help="tiny | S | B | L | H | G | D, or GMA-B / GMA-L (default B)")
    p.add_argument("--gma", action="store_true", help="DEQ-GMA (global motion aggregation)")
    p.add_argument("--no-wnorm", action="store_true",
                   help="no weight normalisation on the update block")
    p.add_argument("--old-version", action="store_true",
                   help="official --old_version flow head (code.v.1.0 checkpoints)")


def config_from_args(a):
    from deq_flow_jax.cli.common import CliError
    from deq_flow_jax.model.config import ModelConfig
    try:
        return ModelConfig.variant(a.variant, gma=a.gma, wnorm=not a.no_wnorm,
                                   old_version=a.old_version)
    except ValueError as e:
        raise CliError("--variant", str(e)) from None


def count_params(params) -> int:
    import jax
    return int(sum(x.size for x in jax.tree.leaves(params)))


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow convert", __doc__)
    p.add_argument("checkpoint", help="official .pth file (state_dict, DataParallel or not)")
    p.add_argument("out_dir", help="output model directory")
    add_model_args(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory written by deq-flow")
    return p


def main(argv: list[str]) -> int:
    return run_command("convert", build_parser(), argv, _run)


def _run(a) -> int:
    from deq_flow_jax import checkpoints, model_io

    cfg = config_from_args(a)
    model_io.check_destination(a.out_dir, a.overwrite)    # before any work
    try:
        from deq_flow_jax.convert import load_official
    except ImportError as e:  # torch is an optional extra
        raise ValueError(f"{a.checkpoint}: reading .pth files needs PyTorch "
                         f"(pip install deq-flow-jax[torch]): {e}") from None
    try:
        variables = load_official(a.checkpoint, cfg)
    except TypeError as e:
        raise ValueError(f"{a.checkpoint}: {e}") from None
    out = checkpoints.save(a.out_dir, variables, cfg, overwrite=a.overwrite)
    print(f"variant {cfg.name}: {count_params(variables['params']):,} parameters")
    print(f"wrote {out}")
    return 0
