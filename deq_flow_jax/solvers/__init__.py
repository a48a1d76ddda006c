"""Generic batched fixed-point solvers (flow-agnostic): pytrees in, pytrees out.

The bottom layer: solvers know nothing of gradients. The entry point that combines a solver
with a gradient rule sits above both (``deq_flow_jax.equilibrium``):

    deq_flow_jax.equilibrium  (fixed_point, Solution, jacobian tools)
      -> deq_flow_jax.adjoints  (IFT, Phantom, NoGrad)
        -> deq_flow_jax.solvers   (Anderson, Broyden, FixedPointIteration, solve, registry)

    from deq_flow_jax.equilibrium import fixed_point
    from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration, make_solver
    from deq_flow_jax.adjoints import IFT, Phantom, NoGrad

``fixed_point`` and ``Solution`` stay importable from here for existing code; they are
loaded on first access, so importing this package loads no adjoint.
"""
import importlib

from deq_flow_jax.solvers.anderson import Anderson
from deq_flow_jax.solvers.base import AbstractSolver
from deq_flow_jax.solvers.broyden import Broyden
from deq_flow_jax.solvers.iteration import FixedPointIteration
from deq_flow_jax.solvers.loop import STOP_MODES, check_stop_mode, solve, solve_flat
from deq_flow_jax.solvers.registry import SOLVER_NAMES, make_solver, solver_name
from deq_flow_jax.solvers.solution import SolverStats

_UPPER = {"fixed_point": "deq_flow_jax.equilibrium", "Solution": "deq_flow_jax.equilibrium"}

__all__ = ["AbstractSolver", "Anderson", "Broyden", "FixedPointIteration", "SOLVER_NAMES",
           "STOP_MODES", "Solution", "SolverStats", "check_stop_mode", "fixed_point",
           "make_solver", "solve", "solve_flat", "solver_name"]


def __getattr__(name: str):
    if name in _UPPER:
        return getattr(importlib.import_module(_UPPER[name]), name)
    raise AttributeError(f"module 'deq_flow_jax.solvers' has no attribute {name!r}")
