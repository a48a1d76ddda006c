"""Solver names: the one registry that maps a name (configs, flags, checkpoints) to a solver.

Canonical names are the official ``f_solver`` / ``b_solver`` values: ``anderson``,
``broyden`` and ``naive`` (plain fixed-point iteration). Other spellings seen in the
official code and in our earlier configs are aliases, resolved here and nowhere else.
"""
from __future__ import annotations

from deq_flow_jax.solvers.anderson import Anderson
from deq_flow_jax.solvers.base import AbstractSolver
from deq_flow_jax.solvers.broyden import Broyden
from deq_flow_jax.solvers.iteration import FixedPointIteration

_CLASSES = {"anderson": Anderson, "broyden": Broyden, "naive": FixedPointIteration}
SOLVER_NAMES = tuple(_CLASSES)           # ("anderson", "broyden", "naive")
ALIASES = {"naive_solver": "naive", "iteration": "naive", "fixed_point_iteration": "naive",
           "picard": "naive", "anderson_solver": "anderson", "broyden_solver": "broyden"}


def solver_name(name: str) -> str:
    """The canonical name of `name` (case-insensitive; aliases resolved).

    Raises:
      ValueError: naming the accepted spellings, when `name` is none of them.
    """
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in _CLASSES:
        raise ValueError(f"unknown solver {name!r}; expected one of {', '.join(SOLVER_NAMES)} "
                         f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


def make_solver(name: str, **kwargs) -> AbstractSolver:
    """A solver object from its name, e.g. ``make_solver("anderson", m=5)``."""
    return _CLASSES[solver_name(name)](**kwargs)
