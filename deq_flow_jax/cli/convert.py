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
import sys


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="B",
                   help="tiny | B | L | H | G | D, or GMA-B / GMA-L (default B)")
    p.add_argument("--gma", action="store_true", help="DEQ-GMA (global motion aggregation)")
    p.add_argument("--no-wnorm", action="store_true",
                   help="no weight normalisation on the update block")
    p.add_argument("--old-version", action="store_true",
                   help="official --old_version flow head (code.v.1.0 checkpoints)")


def config_from_args(a):
    from deq_flow_jax.model.config import ModelConfig
    return ModelConfig.variant(a.variant, gma=a.gma, wnorm=not a.no_wnorm,
                               old_version=a.old_version)


def count_params(params) -> int:
    import jax
    return int(sum(x.size for x in jax.tree.leaves(params)))


def main(argv: list[str]) -> int:
    from deq_flow_jax.cli.init import _message

    p = argparse.ArgumentParser(prog="deq-flow convert", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="official .pth file (state_dict, DataParallel or not)")
    p.add_argument("out_dir", help="output model directory")
    add_model_args(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory written by deq-flow")
    a = p.parse_args(argv)
    try:
        from deq_flow_jax import checkpoints, model_io
        from deq_flow_jax.convert import load_official
        cfg = config_from_args(a)
        model_io.check_destination(a.out_dir, a.overwrite)    # before any work
        variables = load_official(a.checkpoint, cfg)
        out = checkpoints.save(a.out_dir, variables, cfg, overwrite=a.overwrite)
    except (ValueError, OSError, ImportError, TypeError) as e:
        print(f"deq-flow convert: error: {_message(e, a.out_dir)}", file=sys.stderr)
        return 2
    print(f"variant {cfg.name}: {count_params(variables['params']):,} parameters")
    print(f"wrote {out}")
    return 0
