"""`deq-flow init`: write a randomly initialised model (smoke tests, benchmarks, a first look).

    deq-flow init --variant tiny --out runs/tiny_init [--seed 0] [--gma] [--no-wnorm]

Prints the variant and its parameter count, then the output directory.
"""
from __future__ import annotations

from deq_flow_jax.cli.common import ArgumentParser, at_least, run_command
from deq_flow_jax.cli.convert import add_model_args, config_from_args, count_params


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow init", __doc__)
    add_model_args(p)
    p.add_argument("--out", required=True, help="output directory (orbax + model_config.json)")
    p.add_argument("--seed", type=at_least(0), default=0, help="PRNG seed (default 0)")
    return p


def main(argv: list[str]) -> int:
    return run_command("init", build_parser(), argv, _run)


def _run(a) -> int:
    cfg = config_from_args(a)
    import jax

    from deq_flow_jax.model import init_model
    from deq_flow_jax.model_io import save_model
    variables = init_model(cfg, jax.random.PRNGKey(a.seed))
    out = save_model(a.out, variables, cfg)
    print(f"variant {cfg.name}: {count_params(variables['params']):,} parameters")
    print(f"wrote {out}")
    return 0
