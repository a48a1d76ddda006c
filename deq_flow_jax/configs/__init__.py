"""Training configurations (ml_collections), one file per stage; see `common.base_config`.

Stages: chairs, things, sintel, kitti (the official recipe), synthetic (the shipped data,
CPU-sized), demo (`deq-flow demo`), ablation (`deq-flow ablate`). Each file has
`get_config(arg)`; pass the file to the CLI, with an optional `:arg` (model variant):

    deq-flow train --config deq_flow_jax/configs/chairs.py:H --workdir runs/chairs-H

or, from an installed package, `--config "$(python -c 'from deq_flow_jax.configs import
config_path; print(config_path("chairs"))')"`. In Python:

    from deq_flow_jax.configs import chairs
    config = chairs.get_config("H")
"""
import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))
STAGES = ("common", "chairs", "things", "sintel", "kitti", "synthetic", "demo", "ablation")


def config_path(name: str) -> str:
    """The file of a shipped config, e.g. `config_path("chairs")` -> .../configs/chairs.py."""
    path = os.path.join(CONFIG_DIR, f"{name}.py")
    if name == "common" or not os.path.isfile(path):
        raise ValueError(f"no shipped config {name!r}; expected one of "
                         f"{', '.join(s for s in STAGES if s != 'common')}")
    return path
