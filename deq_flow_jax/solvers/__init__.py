"""Generic batched fixed-point solvers (flow-agnostic): pytrees in, pytrees out.

    from deq_flow_jax.solvers import fixed_point, Anderson, Broyden, FixedPointIteration
    from deq_flow_jax.adjoints import IFT, Phantom, NoGrad
"""
from deq_flow_jax.solvers.anderson import Anderson
from deq_flow_jax.solvers.broyden import Broyden
from deq_flow_jax.solvers.fixed_point import fixed_point
from deq_flow_jax.solvers.iteration import FixedPointIteration
from deq_flow_jax.solvers.loop import solve, solve_flat
from deq_flow_jax.solvers.solution import Solution, SolverStats

__all__ = ["Anderson", "Broyden", "FixedPointIteration", "Solution", "SolverStats", "fixed_point",
           "solve", "solve_flat"]
