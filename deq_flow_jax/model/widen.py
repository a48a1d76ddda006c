"""Function-preserving widening of a DEQ-Flow network: more GRU / flow-head channels, same flow.

`widen_variables(variables, src, dst, key)` turns the variables of `src` into those of `dst`, a
configuration equal to `src` except for a larger `hidden_dim` (GRU hidden state) and/or
`flow_head_dim` (flow head hidden width), such that the widened network has the same fixed
point and the same flow: the old channels never read the new ones.

Rules (NHWC activations, HWIO kernels; the update block may be weight-normed, W = g v / ||v||):

* every parameter starts as a fresh draw of `dst`'s initialiser (`init_model`), then the old
  values are copied into the old positions;
* the GRU kernels read [hidden, context, motion (, gma)] along the input axis: the new hidden
  channels are inserted after the old ones (offset = old hidden_dim), every other grown axis
  grows at its end;
* a kernel's weights from new input channels into old output channels are zero (in the GRU,
  the flow head and the mask head); with weight norm such zeros leave ||v|| and so W of the
  old outputs unchanged, and new outputs get g = ||v|| of their fresh v.

So the old hidden channels evolve exactly as before, whatever the new ones do; the new ones
start from zero (DEQ-Flow's initial hidden state) and receive fresh random weights. Gradients
reach the zero weights as soon as the new channels are non-zero, so training grows them from
there. A solver that mixes all components (Anderson, Broyden) follows a different trajectory
in the wider state space but has the same fixed point for the old components.

With `method="split"` (Net2WiderNet, Chen et al. 2016) the new channels are instead copies of
old channels drawn at random: a copied channel's incoming weights and bias are repeated, and its
outgoing weights (into the GRU, the flow head, the mask head) are divided among its copies in
random shares that sum to one. The copies then carry the same values as their original, so the
flow is the same, and unlike fresh channels they compute features the loss already uses, so
gradients reach them at once; the unequal shares break their symmetry. `noise` > 0 adds
Net2Net's other symmetry breaker: Gaussian noise on the copies' incoming weights (each copied
output column of a kernel gets `noise` times that column's standard deviation), which changes
the flow a little and makes the copies compute different features from the first step.

`embed` is the shared primitive of "fresh", `split_params` / `split_moments` of "split";
`deq_flow_jax.train.widen` applies them to a training state (parameters, EMA, optimiser
moments) and a workdir.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Sequence

import jax
import numpy as np

from deq_flow_jax.model.config import ModelConfig

GROWABLE = ("hidden_dim", "flow_head_dim")


def check_widening(src: ModelConfig, dst: ModelConfig) -> None:
    """Raises ValueError unless `dst` is `src` with hidden_dim / flow_head_dim grown (or equal)."""
    for f in dataclasses.fields(ModelConfig):
        a, b = getattr(src, f.name), getattr(dst, f.name)
        if f.name in GROWABLE:
            if b < a:
                raise ValueError(f"widening: {f.name} can only grow ({a} -> {b})")
        elif f.name != "name" and a != b:
            raise ValueError(f"widening: only {', '.join(GROWABLE)} may change, "
                             f"but {f.name} differs ({a!r} -> {b!r})")


def check_method(method: str, noise: float = 0.0) -> None:
    """Raises ValueError unless `method` is one of METHODS and `noise` is 0 or goes with "split"
    (its value is checked by `split_plans`)."""
    if method not in METHODS:
        raise ValueError(f"widening: method must be one of {METHODS}, got {method!r}")
    if noise and method != "split":
        raise ValueError("widening: --noise applies to --method split only")


def _names(path) -> list[str]:
    return [str(getattr(p, "key", getattr(p, "name", p))) for p in path]


def _in_gru(names: Sequence[str]) -> bool:
    """The path lies inside a ConvGRU of the update block (`gru`, `gru2`, ...)."""
    return "update_block" in names and any(n == "gru" or (n.startswith("gru") and n[3:].isdigit())
                                           for n in names)


def _is_gru_kernel(names: Sequence[str]) -> bool:
    """A (weight-normed or plain) kernel of a ConvGRU of the update block."""
    return names[-1] in ("kernel", "weight_v") and _in_gru(names)


def embed(old: np.ndarray, fill: np.ndarray, names: Sequence[str], hidden_offset: int,
          zero_cross: bool) -> np.ndarray:
    """`old` placed inside a copy of `fill` (the new, larger shape).

    Args:
      old: the old array (any rank); each axis no larger than `fill`'s.
      fill: values of the new array at the new positions (a fresh draw, or zeros).
      names: the parameter's path (decides where a GRU kernel's input axis grows).
      hidden_offset: old hidden_dim: where the new hidden rows of a GRU kernel are inserted.
      zero_cross: zero a kernel's weights from new input channels into old output channels.

    Returns:
      float32 array of `fill`'s shape.
    """
    old, out = np.asarray(old), np.array(fill, dtype=np.float32, copy=True)
    if old.shape == out.shape:
        return old.astype(np.float32)
    if old.ndim != out.ndim or any(o > n for o, n in zip(old.shape, out.shape)):
        raise ValueError(f"widening: {'/'.join(names)} cannot grow from {old.shape} to {out.shape}")
    kernel = names[-1] in ("kernel", "weight_v") and old.ndim == 4
    keep, new_in = [], None
    for axis, (o, n) in enumerate(zip(old.shape, out.shape)):
        off = hidden_offset if (kernel and axis == 2 and _is_gru_kernel(names) and n > o) else o
        keep.append(np.concatenate([np.arange(off), np.arange(off + n - o, n)]).astype(np.int64))
        if kernel and axis == 2:
            new_in = np.arange(off, off + n - o)
    out[np.ix_(*keep)] = old
    if zero_cross and kernel and new_in is not None and new_in.size:
        out[np.ix_(np.arange(out.shape[0]), np.arange(out.shape[1]), new_in, keep[3])] = 0.0
    return out


def widen_tree(old: Any, fill: Any, hidden_offset: int, zero_cross: bool) -> Any:
    """`embed` over matching pytrees (same structure; leaves of `fill` as large or larger)."""
    def one(path, o, f):
        return embed(np.asarray(o), np.asarray(f), _names(path), hidden_offset, zero_cross)
    return jax.tree_util.tree_map_with_path(one, old, fill)


def widen_variables(variables: dict, src: ModelConfig, dst: ModelConfig, key: jax.Array,
                    method: str = "fresh", noise: float = 0.0) -> dict:
    """Variables of `src` -> variables of the wider `dst` with the same flow (see module doc).

    Args:
      variables: {"params", "batch_stats"} of a `src` model (plain or weight-normed update block).
      src, dst: the configurations (`check_widening(src, dst)` must pass).
      key: PRNG key: the new channels' weights ("fresh") or which channels they copy and their
        shares ("split").
      method: "fresh" (new random channels that the old ones never read) or "split" (new
        channels copy old ones, which share their outgoing weights with them; Net2WiderNet).
      noise: "split" only: relative noise on the copies' incoming weights (`split_plans`).

    Returns:
      {"params", "batch_stats"} of `dst` as float32 NumPy-backed jax arrays.
    """
    from deq_flow_jax.model.forward import init_model
    check_method(method, noise)
    check_widening(src, dst)
    if method == "split":
        like = init_model(dst, jax.random.PRNGKey(0))          # for the shapes only
        out = dict(variables, params=split_params(variables["params"],
                                                     split_plans(src, dst, key, noise)))
        check_shapes(out["params"], like["params"], "params")
        return jax.tree.map(jax.numpy.asarray, out)
    fresh = init_model(dst, key)
    out = {"params": widen_tree(variables["params"], fresh["params"], src.hidden_dim, True)}
    if "batch_stats" in variables:
        out["batch_stats"] = widen_tree(variables["batch_stats"], fresh["batch_stats"],
                                        src.hidden_dim, True)
    return jax.tree.map(jax.numpy.asarray, out)


# --- Net2Net-style splitting: the new channels copy old ones ---------------------------------

METHODS = ("fresh", "split")


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """How one width grows by splitting channels (Net2WiderNet).

    src: (new,) int: the old channel each channel copies (channel i < old copies itself).
    share: (new,) float32: each copy's share of its old channel's outgoing weights, drawn
      uniformly from [0.5, 1.5] and normalised over the copies of one old channel (sums to 1
      there; 1 for a channel nobody copies). Unequal shares keep the flow but break the
      copies' symmetry: equal ones would receive identical Adam steps forever.
    """

    src: np.ndarray
    share: np.ndarray

    @property
    def old(self) -> int:
        return int(self.src.max()) + 1 if self.src.size else 0


def split_plan(old: int, new: int, rng: np.random.Generator) -> SplitPlan:
    """Channels old..new-1 copy old channels drawn uniformly with replacement."""
    src = np.concatenate([np.arange(old), rng.integers(0, old, new - old)]).astype(np.int64)
    u = rng.uniform(0.5, 1.5, new)
    total = np.bincount(src, weights=u, minlength=old)
    return SplitPlan(src, (u / total[src]).astype(np.float32))


def split_plans(src: ModelConfig, dst: ModelConfig, key: jax.Array, noise: float = 0.0) -> dict:
    """{"hidden": SplitPlan, "head": SplitPlan, "noise": (noise, seed)} for `src` -> `dst`, drawn
    from `key`. `noise` (>= 0, finite): the copies' incoming weights get Gaussian noise of
    `noise` times the standard deviation of their column (`_split_node`); `seed` fixes that draw,
    which depends on the parameter's path only, so the parameters and their EMA get the same."""
    check_widening(src, dst)
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"widening: noise must be finite and >= 0, got {noise}")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    return {"hidden": split_plan(src.hidden_dim, dst.hidden_dim, rng),
            "head": split_plan(src.flow_head_dim, dst.flow_head_dim, rng),
            "noise": (float(noise), int(rng.integers(0, 2 ** 31)))}


def _split_role(names: Sequence[str], plans: dict):
    """(input plan or None, output plan or None) of the convolution at path `names` (its node).

    The GRU hidden state feeds the GRU convolutions (input channels 0..hidden-1), the flow head
    and the mask head and is produced by the GRU; the flow head's hidden layer is conv1's output
    and conv2's input. Nothing else reads or writes a grown width."""
    names = list(names)
    if _in_gru(names):
        return plans["hidden"], plans["hidden"]
    if names[-2:] == ["flow_head", "conv1"]:
        return plans["hidden"], plans["head"]
    if names[-2:] == ["flow_head", "conv2"]:
        return plans["head"], None
    if names[-2:] == ["mask", "mask_0"]:
        return plans["hidden"], None
    return None, None


def _split_kernel(w: np.ndarray, inp, out, moment: int = 0) -> np.ndarray:
    """A HWIO kernel (or its Adam moment, `moment` 1 / 2) with input channels 0..inp.old-1 and
    output channels split. Weights: copied input rows times their share, so the copies of a
    channel together pass on what it did; copied output columns as they are. Moments: copied
    rows as they are (those weights see the same gradient), output columns times share**moment
    (a copy's pre-activation gradient is its share of the old one)."""
    w = np.asarray(w, np.float32)
    if inp is not None:
        rows = w[:, :, inp.src]
        if not moment:
            rows = rows * inp.share[None, None, :, None]
        w = np.concatenate([rows, w[:, :, inp.old:]], axis=2)
    if out is not None:
        w = w[..., out.src] * (out.share ** moment if moment else 1.0)
    return w


def _split_vector(b: np.ndarray, out, moment: int = 0) -> np.ndarray:
    b = np.asarray(b, np.float32)
    return b if out is None else b[out.src] * (out.share ** moment if moment else 1.0)


def _add_noise(w: np.ndarray, out, names: Sequence[str], plans: dict) -> np.ndarray:
    """A split HWIO kernel with the copies' columns (outputs out.old..) plus Gaussian noise of
    `noise` times each column's standard deviation; the draw depends on the seed and `names`."""
    scale, seed = plans.get("noise", (0.0, 0))
    if out is None or not scale or w.shape[-1] <= out.old:
        return w
    rng = np.random.default_rng([seed, zlib.crc32("/".join(map(str, names)).encode())])
    cols = w[..., out.old:]
    std = cols.reshape(-1, cols.shape[-1]).std(axis=0)
    w = w.copy()
    w[..., out.old:] = cols + scale * std * rng.standard_normal(cols.shape).astype(np.float32)
    return w


def _split_node(node: dict, names: Sequence[str], plans: dict) -> dict:
    """One convolution's parameters ({kernel | weight_g, weight_v} [, bias]) split; a
    weight-normed kernel is split as W = g v / ||v|| and stored back with each output's old
    ||v|| / g, so the unchanged entries of v keep their values (the copies' noise, if any, is
    added to W)."""
    inp, out = _split_role(names, plans)
    node = dict(node)
    if inp is None and out is None:
        return node
    if "kernel" in node:
        node["kernel"] = _add_noise(_split_kernel(node["kernel"], inp, out), out, names, plans)
    else:
        g, v = np.asarray(node["weight_g"], np.float32), np.asarray(node["weight_v"], np.float32)
        norm = np.sqrt(np.sum(v * v, axis=(0, 1, 2)))
        scale = np.where(g != 0, norm / np.where(g != 0, g, 1.0), 1.0)
        w = _add_noise(_split_kernel(v * (g / np.where(norm > 0, norm, 1.0)), inp, out), out,
                       names, plans)
        node["weight_v"] = w * _split_vector(scale, out)
        node["weight_g"] = np.sqrt(np.sum(w * w, axis=(0, 1, 2)))
    if "bias" in node:
        node["bias"] = _split_vector(node["bias"], out)
    return node


def split_params(params: Any, plans: dict, path: tuple = ()) -> Any:
    """A params tree (nested dicts) with every grown width split by `plans` (`split_plans`)."""
    if hasattr(params, "items"):
        if "kernel" in params or "weight_v" in params:
            return _split_node(params, path, plans)
        return {k: split_params(v, plans, path + (k,)) for k, v in params.items()}
    return params


def split_moments(opt_state: Any, plans: dict) -> Any:
    """Adam's moments (the `mu` / `nu` trees inside an optax state) split like the parameters
    they belong to (`_split_kernel`); other leaves (counts) unchanged."""
    def one(path, x):
        names = _names(path)
        moment = 1 if "mu" in names else 2 if "nu" in names else 0
        if not moment or names[-1] not in ("kernel", "weight_v", "weight_g", "bias"):
            return x
        inp, out = _split_role(names[:-1], plans)
        if names[-1] in ("kernel", "weight_v"):
            return _split_kernel(x, inp, out, moment)
        return _split_vector(x, out, moment)
    return jax.tree_util.tree_map_with_path(one, opt_state)


def check_shapes(tree: Any, like: Any, what: str) -> None:
    """Raises ValueError naming the first leaf of `tree` whose shape differs from `like`'s."""
    a = jax.tree_util.tree_flatten_with_path(tree)[0]
    b = jax.tree_util.tree_flatten_with_path(like)[0]
    if [p for p, _ in a] != [p for p, _ in b]:
        raise ValueError(f"widening: {what} does not have the wider model's structure")
    for (path, x), (_, y) in zip(a, b):
        if np.shape(x) != np.shape(y):
            raise ValueError(f"widening: {what} {'/'.join(_names(path))} is {np.shape(x)}, "
                             f"the wider model needs {np.shape(y)}")
