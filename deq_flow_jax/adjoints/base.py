"""The contract of a gradient rule ("adjoint") of a fixed-point solve.

An adjoint is a frozen (hashable) dataclass. Given the solver's answer ``z_star`` (computed
without gradients), ``apply`` returns the value handed to the caller, carrying the rule's
gradients with respect to ``args``. ``fn`` is the closure-converted, pure ``fn(z, args)``.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import jax


class AbstractAdjoint(abc.ABC):
    """A gradient rule: ``apply(fn, z_star, args) -> value``."""

    @abc.abstractmethod
    def apply(self, fn: Callable[[Any, Any], Any], z_star: Any, args: Any) -> Any:
        """The fixed point with this rule's gradients (a pytree like ``z_star``)."""


class AbstractReportingAdjoint(AbstractAdjoint):
    """An adjoint that solves a backward problem and can report its statistics.

    ``apply(..., probe=p)`` with ``p`` a zeros(3) array (``backward_probe()``): the gradient
    w.r.t. ``p`` is [mean nstep, mean abs residual, mean rel residual] of the backward solve.
    """

    @abc.abstractmethod
    def apply(self, fn: Callable[[Any, Any], Any], z_star: Any, args: Any,
              probe: jax.Array | None = None) -> Any:
        """As :meth:`AbstractAdjoint.apply`; ``probe`` receives the backward statistics."""
