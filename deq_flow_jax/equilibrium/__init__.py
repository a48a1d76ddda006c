"""Equilibrium layer: the entry point that combines a solver with a gradient rule, and the
Jacobian tools at an equilibrium. The top of the generic DEQ stack:

    equilibrium (fixed_point, Solution, jacobian_frobenius_sq, spectral_radius)
      -> adjoints (IFT, Phantom, NoGrad)   -> solvers (Anderson, Broyden, ...)

Imports point down only: neither solvers nor adjoints import this package.

    from deq_flow_jax.equilibrium import fixed_point, jacobian_frobenius_sq
"""
from deq_flow_jax.equilibrium.fixed_point import Solution, fixed_point
from deq_flow_jax.equilibrium.jacobian import jacobian_frobenius_sq, spectral_radius

__all__ = ["Solution", "fixed_point", "jacobian_frobenius_sq", "spectral_radius"]
