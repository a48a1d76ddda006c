"""`deq-flow init`: write a randomly initialised model (smoke tests, benchmarks, a first look).

    deq-flow init --variant tiny --out runs/tiny_init [--seed 0] [--gma] [--no-wnorm] [--overwrite]

Prints the variant and its parameter count, then the output directory. `--out` must not
exist, be an empty folder, or (with --overwrite) hold a model written by deq-flow.
"""
from __future__ import annotations

from deq_flow_jax.cli.common import ArgumentParser, at_least, run_command
from deq_flow_jax.cli.convert import add_model_args, config_from_args, count_params


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow init", __doc__)
    add_model_args(p)
    p.add_argument("--out", required=True, help="output model directory")
    p.add_argument("--seed", type=at_least(0), default=0, help="PRNG seed (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing model directory written by deq-flow")
    return p


def main(argv: list[str]) -> int:
    return run_command("init", build_parser(), argv, _run)


def _run(a) -> int:
    from deq_flow_jax import checkpoints, model_io

    cfg = config_from_args(a)
    model_io.check_destination(a.out, a.overwrite)        # before any work
    import jax

    from deq_flow_jax.model import init_model
    variables = init_model(cfg, jax.random.PRNGKey(a.seed))
    out = checkpoints.save(a.out, variables, cfg, overwrite=a.overwrite)
    print(f"variant {cfg.name}: {count_params(variables['params']):,} parameters")
    print(f"wrote {out}")
    return 0
