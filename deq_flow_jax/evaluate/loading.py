"""Thin names for callers written against the first API; the code is `deq_flow_jax.checkpoints`.

Callers: evaluate/cli_args.py (`checkpoint_kind`, `load_any`, `training_solver_defaults`;
their errors start with `--checkpoint`, the flag that named the path), benchmarks/reuse.py and
benchmarks/pretrained.py (`load_any`).
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def _as_flag_error(path):
    """Re-raises a checkpoint error with the flag's name in front (one line, same type)."""
    try:
        yield
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(("--checkpoint omitted and " if path is None else "--checkpoint ")
                      + str(e)) from None


def checkpoint_kind(path: str) -> str:
    """"model" or "workdir": `deq_flow_jax.checkpoints.kind`."""
    from deq_flow_jax import checkpoints
    with _as_flag_error(path):
        return checkpoints.kind(path)


def load_any(path, which: str = "best"):
    """(variables, cfg) from a model directory, a training workdir, or None (the shipped
    pretrained model): `deq_flow_jax.checkpoints.load` without the DEQConfig."""
    from deq_flow_jax import checkpoints
    with _as_flag_error(path):
        return checkpoints.load(path, which)[:2]


def training_solver_defaults(path, which: str = "best") -> dict:
    """The evaluation solver settings of a checkpoint as {"f_solver", "f_max_steps", "f_tol",
    "f_stop_mode", "eval_factor"}: from the DEQConfig stored with it, else
    `checkpoints.FALLBACK_DEQ` (so every command gets the same default budget)."""
    from deq_flow_jax import checkpoints
    with _as_flag_error(path):
        deq = checkpoints.evaluation_deq(checkpoints.describe(path, which)[1])
    return {k: getattr(deq, k) for k in ("f_solver", "f_max_steps", "f_tol", "f_stop_mode",
                                         "eval_factor")}
