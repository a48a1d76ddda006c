"""Closure conversion: turn ``fn(z, args)`` into a function of explicit arrays only.

``fn`` may close over arrays - constants, or tracers of an enclosing ``jit`` / ``grad`` (model
parameters, for instance). A ``lax.while_loop`` must not be differentiated and a
``custom_vjp`` rule must not close over tracers, so every array ``fn`` closes over is hoisted
into an explicit argument: ``f(z, (args, consts))``. Unlike ``jax.closure_convert``, which
hoists only values that may carry derivatives, this hoists every constant, so integer
tracers of an outer ``jit`` cannot leak into the backward pass either.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import jax


def closure_convert_all(fn: Callable[[Any, Any], Any], z: Any, args: Any
                        ) -> Tuple[Callable[[Any, Any], Any], Tuple[Any, ...], Any]:
    """Traces ``fn(z, args)`` once.

    Returns:
      (f, consts, out_shape): ``f(z, (args, consts))`` evaluates the traced program with the
      hoisted ``consts`` (a tuple of arrays); ``out_shape`` is the ``ShapeDtypeStruct``
      pytree of ``fn``'s output.
    """
    closed, out_shape = jax.make_jaxpr(lambda zz, aa: fn(zz, aa), return_shape=True)(z, args)
    jaxpr = closed.jaxpr
    out_tree = jax.tree_util.tree_structure(out_shape)
    in_tree = jax.tree_util.tree_structure((z, args))

    def f(zz, full):
        a, consts = full
        leaves, tree = jax.tree_util.tree_flatten((zz, a))
        if tree != in_tree:
            raise ValueError(f"fixed_point: fn called with a structure {tree}, traced with {in_tree}")
        out = jax.core.eval_jaxpr(jaxpr, list(consts), *leaves)
        return jax.tree_util.tree_unflatten(out_tree, out)

    return f, tuple(closed.consts), out_shape
