"""`deq-flow train`: train (or resume) a DEQ-Flow model from an ml_collections config.

    deq-flow train --config deq_flow_jax/configs/chairs.py --workdir runs/x \
        --config.num_steps=200 --config.model.variant=tiny
    deq-flow train --config deq_flow_jax/configs/chairs.py:H ...          # get_config("H")

Multi-host: run the same command on every process with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
Rerunning on a workdir with checkpoints resumes ("resumed from step N").
"""
from __future__ import annotations

import json

from absl import flags
from ml_collections import config_flags

from deq_flow_jax.cli.config_args import parse_flags


def _flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "training config file (deq_flow_jax/configs/<stage>.py[:variant]); "
        "override any field with --config.a.b=value", flag_values=fv, lock_config=True)
    flags.DEFINE_string("workdir", None, "output directory (checkpoints, logs); resumed if it "
                        "holds checkpoints", flag_values=fv)
    flags.DEFINE_string("coordinator_address", None, "multi-process: HOST:PORT of process 0",
                        flag_values=fv)
    flags.DEFINE_integer("num_processes", None, "multi-process: number of processes",
                         flag_values=fv)
    flags.DEFINE_integer("process_id", None, "multi-process: this process's index",
                         flag_values=fv)
    return fv


def main(argv: list[str]) -> int:
    fv, stop = parse_flags("deq-flow train", _flags, argv, __doc__)
    if stop is not None:
        return stop
    from deq_flow_jax.train.parallel import initialize_distributed
    initialize_distributed(fv.coordinator_address, fv.num_processes, fv.process_id)
    from deq_flow_jax.train import train_and_evaluate
    metrics = train_and_evaluate(fv.config, fv.workdir)
    print(json.dumps({"final_val": metrics}, sort_keys=True))
    return 0
