"""Gradient rules ("adjoints") for :func:`deq_flow_jax.equilibrium.fixed_point`.

* :class:`IFT`: implicit differentiation, u = g + (df/dz)^T u solved by any solver.
* :class:`Phantom`: k damped steps from the stopped-gradient fixed point (``Phantom(1)``
  is the one-step gradient).
* :class:`NoGrad`: no gradient (inference).

Every adjoint is a frozen dataclass deriving from :class:`AbstractAdjoint`, with
``apply(fn, z_star, args) -> value``; :class:`IFT` (an :class:`AbstractReportingAdjoint`)
also takes ``probe=`` to report its backward solve. Adjoints sit above the solvers (IFT
uses one for its backward solve) and below :mod:`deq_flow_jax.equilibrium`.
"""
from deq_flow_jax.adjoints.base import AbstractAdjoint, AbstractReportingAdjoint
from deq_flow_jax.adjoints.ift import IFT, backward_probe
from deq_flow_jax.adjoints.nograd import NoGrad
from deq_flow_jax.adjoints.phantom import Phantom

__all__ = ["AbstractAdjoint", "AbstractReportingAdjoint", "IFT", "NoGrad", "Phantom",
           "backward_probe"]
