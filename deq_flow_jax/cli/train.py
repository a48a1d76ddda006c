"""`deq-flow train`: train (or resume) a DEQ-Flow model from an ml_collections config.

    deq-flow train --config deq_flow_jax/configs/chairs.py --workdir runs/x \
        --config.num_steps=200 --config.model.variant=tiny
    deq-flow train --config deq_flow_jax/configs/chairs.py:H ...          # get_config("H")

Multi-host: run the same command on every process with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
Rerunning on a workdir with checkpoints resumes ("resumed from step N").
"""
from __future__ import annotations

from deq_flow_jax.cli.common import ArgumentParser, at_least, run_command
from deq_flow_jax.cli.config_args import add_config_arg, parse_config_command
from deq_flow_jax.io.common import dumps_json


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow train", __doc__)
    add_config_arg(p, None, "training config file (deq_flow_jax/configs/<stage>.py[:variant])")
    p.add_argument("--workdir", default=None,
                   help="output directory (checkpoints, logs); resumed if it holds checkpoints")
    p.add_argument("--coordinator_address", default=None, help="multi-process: HOST:PORT of process 0")
    p.add_argument("--num_processes", type=at_least(1), default=None,
                   help="multi-process: number of processes")
    p.add_argument("--process_id", type=at_least(0), default=None, help="multi-process: this process's index")
    return p


def main(argv: list[str]) -> int:
    parse = lambda a: parse_config_command(build_parser(), a, ("config", "workdir"))  # noqa: E731
    return run_command("train", parse, argv, _run)


def _run(fv) -> int:
    from deq_flow_jax.train.parallel import initialize_distributed
    initialize_distributed(fv.coordinator_address, fv.num_processes, fv.process_id)
    from deq_flow_jax.train import train_and_evaluate
    metrics = train_and_evaluate(fv.config, fv.workdir)
    print(dumps_json({"final_val": metrics}, sort_keys=True))
    return 0
