"""Per-sample flattening of batched pytrees.

The solvers work on a (B, D) matrix: each leaf of the state pytree, whose leading axis is
the batch axis B, is reshaped to (B, -1) and the leaves are concatenated along axis 1.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp
import numpy as np


def batch_size_of(tree: Any, name: str = "z0") -> int:
    """Returns the common leading (batch) size of all leaves of ``tree``.

    Raises:
      ValueError: if ``tree`` has no leaves, a leaf is a scalar, a leaf is not
        floating point, or the leading sizes differ.
    """
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name} has no array leaves; expected a pytree of (B, ...) arrays")
    sizes = set()
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError(f"{name}: every leaf needs a leading batch axis B, found a scalar leaf")
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            raise ValueError(f"{name}: leaves must be floating point, found {jnp.result_type(leaf)}")
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ValueError(f"{name}: leaves must share the leading batch size, found sizes {sorted(sizes)}")
    return sizes.pop()


def make_flattener(tree: Any) -> Tuple[Callable[[Any], jax.Array], Callable[[jax.Array], Any], int]:
    """Builds ``flatten(tree) -> (B, D)`` and ``unflatten((B, D)) -> tree`` for trees shaped like ``tree``.

    The flat dtype is the promoted dtype of the leaves; ``unflatten`` casts each leaf back.

    Returns:
      (flatten, unflatten, D)
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    shapes = [jnp.shape(x)[1:] for x in leaves]
    dtypes = [jnp.result_type(x) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    splits = np.cumsum(sizes)[:-1].tolist()
    dtype = jnp.result_type(*dtypes)

    def flatten(t: Any) -> jax.Array:
        ls = jax.tree_util.tree_leaves(t)
        b = jnp.shape(ls[0])[0]
        flat = [jnp.reshape(x, (b, -1)).astype(dtype) for x in ls]
        return flat[0] if len(flat) == 1 else jnp.concatenate(flat, axis=1)

    def unflatten(x: jax.Array) -> Any:
        b = x.shape[0]
        parts = [x] if len(sizes) == 1 else jnp.split(x, splits, axis=1)
        out = [jnp.reshape(p, (b,) + s).astype(d) for p, s, d in zip(parts, shapes, dtypes)]
        return jax.tree_util.tree_unflatten(treedef, out)

    return flatten, unflatten, int(sum(sizes))
