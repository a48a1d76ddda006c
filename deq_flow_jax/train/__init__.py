"""Training: losses, optimiser, data-parallel step, checkpoints, logging, the loop.

    from deq_flow_jax.train import train_and_evaluate
    metrics = train_and_evaluate(config, workdir)       # config: deq_flow_jax/configs/*.py
"""
from __future__ import annotations


def train_and_evaluate(config, workdir: str) -> dict:
    """See `deq_flow_jax.train.loop.train_and_evaluate`."""
    from deq_flow_jax.train.loop import train_and_evaluate as _run
    return _run(config, workdir)


__all__ = ["train_and_evaluate"]
