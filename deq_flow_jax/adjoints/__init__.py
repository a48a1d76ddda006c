"""Gradient rules ("adjoints") for :func:`deq_flow_jax.solvers.fixed_point`.

* :class:`IFT`: implicit differentiation, u = g + (df/dz)^T u solved by any solver.
* :class:`Phantom`: k damped steps from the stopped-gradient fixed point (``Phantom(1)``
  is the one-step gradient).
* :class:`NoGrad`: no gradient (inference).

Every adjoint is a frozen dataclass with ``apply(fn, z_star, args, probe) -> value``.
"""
from deq_flow_jax.adjoints.ift import IFT, backward_probe
from deq_flow_jax.adjoints.nograd import NoGrad
from deq_flow_jax.adjoints.phantom import Phantom

__all__ = ["IFT", "NoGrad", "Phantom", "backward_probe"]
