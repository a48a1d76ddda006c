"""`deq-flow init`: write a randomly initialised model (smoke tests, benchmarks, a first look).

    deq-flow init --variant tiny --out runs/tiny_init [--seed 0] [--gma] [--no-wnorm] [--overwrite]

Prints the variant and its parameter count, then the output directory. `--out` must not
exist, be an empty folder, or (with --overwrite) hold a model written by deq-flow.
"""
from __future__ import annotations

import argparse
import sys

from deq_flow_jax.cli.convert import add_model_args, config_from_args, count_params


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="deq-flow init", description=__doc__.split("\n")[0])
    add_model_args(p)
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory written by deq-flow")
    a = p.parse_args(argv)
    try:
        from deq_flow_jax import checkpoints, model_io
        cfg = config_from_args(a)
        model_io.check_destination(a.out, a.overwrite)        # before any work
        import jax

        from deq_flow_jax.model import init_model
        variables = init_model(cfg, jax.random.PRNGKey(a.seed))
        out = checkpoints.save(a.out, variables, cfg, overwrite=a.overwrite)
    except (ValueError, OSError) as e:
        print(f"deq-flow init: error: {_message(e, a.out)}", file=sys.stderr)
        return 2
    print(f"variant {cfg.name}: {count_params(variables['params']):,} parameters")
    print(f"wrote {out}")
    return 0


def _message(e: BaseException, out: str) -> str:
    """One line for an error; an OSError names the user's --out, not a temporary path."""
    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError | FileExistsError):
        return f"--out {out}: cannot be written ({e.strerror or e})"
    return str(e)
