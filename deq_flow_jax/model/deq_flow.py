"""DEQ-Flow's parts wired together: encoders, the equilibrium function f, decoding.

Everything is functional: variables are a dict
`{"params": {"fnet", "cnet", "update_block", "mask", ["attn"]}, "batch_stats": {"cnet"}}`
and each part is applied with its own sub-tree. f is `DEQFunc(cfg, all_grad)`, a
frozen (hashable, value-equal) callable `f(z, args) -> z` with z = (hidden, coords):

    hidden (B, h, w, hdim), coords (B, h, w, 2) pixel coordinates (x, y) at 1/8 resolution,
    args = FArgs(params (update block, weight norm folded), inp, pyramid, coords0, attn).

Mixed precision (`cfg.compute_dtype == "bfloat16"`, the official `--mixed_precision`): the
float32 parameters and the inputs of each network part (encoders, GMA attention, update block,
mask head) are cast to bfloat16 where the part is applied, so its convolutions and norms run in
bf16 (what Flax's `dtype=` does per layer, with `param_dtype` float32); gradients flow back
through the casts into the float32 parameters. The feature maps are cast back to float32 before
the correlation pyramid (volume and lookup are float32), and f returns a float32 state
(hidden, coords), so the solver, flow, coordinates and losses are float32. With float32 no cast
is inserted: the float32 computation is unchanged.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from deq_flow_jax.model.config import ModelConfig
from deq_flow_jax.model.corr import Pyramid, build_pyramid, lookup
from deq_flow_jax.model.encoder import Encoder, apply_encoder
from deq_flow_jax.model.gma import Attention
from deq_flow_jax.model.remat import late_checkpoint
from deq_flow_jax.model.update import UpdateBlock, context_projections
from deq_flow_jax.model.upsample import MaskHead, convex_upsample
from deq_flow_jax.model.weight_norm import apply_weight_norm, fold_weight_norm


class FArgs(NamedTuple):
    """Inputs of f that stay fixed during the solve (a pytree)."""

    params: Any                   # update-block parameters, plain kernels
    inp: jax.Array                # (B, h, w, cdim) relu(context features)
    pyramid: Pyramid              # correlation pyramid (see corr.build_pyramid)
    coords0: jax.Array            # (B, h, w, 2) pixel grid (x, y)
    attn: Optional[jax.Array]     # (B, h*w, h*w) GMA attention or None
    inp_proj: Any = None          # {gru name: {conv: (B, h, w, hdim)}} context share of the GRU


def to_compute(cfg: ModelConfig, tree):
    """Casts the floating leaves of `tree` to the compute dtype (identity for float32)."""
    if not cfg.mixed_precision:
        return tree
    return jax.tree.map(lambda x: x.astype(jnp.bfloat16)
                        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, tree)


def to_f32(cfg: ModelConfig, x):
    """Casts an array back to float32 after a mixed-precision part (identity for float32)."""
    return x.astype(jnp.float32) if cfg.mixed_precision else x


def coords_grid(b: int, h: int, w: int) -> jax.Array:
    """(B, h, w, 2) grid of pixel coordinates, channel 0 = x (column), 1 = y (row)."""
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    return jnp.broadcast_to(jnp.stack([xs, ys], axis=-1), (b, h, w, 2))


def normalize_images(image: jax.Array) -> jax.Array:
    """0..255 -> [-1, 1] float32."""
    return 2.0 * (jnp.asarray(image, jnp.float32) / 255.0) - 1.0


def modules(cfg: ModelConfig):
    """The Flax modules of a configuration: dict name -> module."""
    mods = {
        "fnet": Encoder(cfg.fnet_dim, "instance", cfg.encoder),
        "cnet": Encoder(cfg.context_dim, "batch", cfg.encoder),
        "update_block": UpdateBlock(cfg),
        "mask": MaskHead(),
    }
    if cfg.gma:
        mods["attn"] = Attention(cfg.context_dim)
    return mods


def init_variables(cfg: ModelConfig, key: jax.Array, image_size: Tuple[int, int] = (64, 64)):
    """Random variables for `cfg` (official-style initialisers), weight norm applied if cfg.wnorm."""
    h, w = image_size
    if h % 8 or w % 8:
        raise ValueError(f"init_model: image_size must be multiples of 8, got {image_size}")
    h8, w8 = h // 8, w // 8
    mods = modules(cfg)
    keys = dict(zip(sorted(mods), jax.random.split(key, len(mods))))
    img = jnp.zeros((1, h, w, 3), jnp.float32)
    params, stats = {}, {}
    v = mods["fnet"].init(keys["fnet"], img)
    params["fnet"] = v["params"]
    v = mods["cnet"].init(keys["cnet"], img)
    params["cnet"], stats["cnet"] = v["params"], v["batch_stats"]
    net = jnp.zeros((1, h8, w8, cfg.hidden_dim))
    inp = jnp.zeros((1, h8, w8, cfg.context_dim))
    corr = jnp.zeros((1, h8, w8, cfg.corr_channels))
    flow = jnp.zeros((1, h8, w8, 2))
    attn = jnp.full((1, h8 * w8, h8 * w8), 1.0 / (h8 * w8)) if cfg.gma else None
    ub = mods["update_block"].init(keys["update_block"], net, inp, corr, flow, attn)["params"]
    params["update_block"] = apply_weight_norm(ub) if cfg.wnorm else ub
    params["mask"] = mods["mask"].init(keys["mask"], net)["params"]
    if cfg.gma:
        params["attn"] = mods["attn"].init(keys["attn"], inp)["params"]
    return {"params": params, "batch_stats": stats}


def fast_init(cfg: ModelConfig, key: jax.Array, image_size: Tuple[int, int] = (64, 64)):
    """Same distributions as `init_variables`, drawn with NumPy from the parameter shapes.

    Flax's `init` traces and runs the whole network; this only needs `jax.eval_shape`, so it
    takes a fraction of a second. Rules: encoder kernels kaiming-normal (fan_out, relu), other
    kernels and all biases uniform(+-1/sqrt(fan_in)) (PyTorch defaults), batch norm scale 1 /
    bias 0 / mean 0 / var 1, GMA gamma 0; weight norm g = ||v||.
    """
    import numpy as np
    abstract = jax.eval_shape(lambda: init_variables(
        dataclasses.replace(cfg, wnorm=False), jax.random.PRNGKey(0), image_size))
    seed = np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                      else key).astype(np.uint32).ravel().tolist()
    rng = np.random.default_rng(seed)

    def leaf(path, x):
        names = [p.key for p in path]
        shape, last = tuple(x.shape), names[-1]
        if names[-2:-1] == ["bn"]:
            return np.ones(shape, np.float32) if last in ("scale", "var") else np.zeros(shape, np.float32)
        if last == "gamma":
            return np.zeros(shape, np.float32)
        if last == "kernel":
            kh, kw, cin, cout = shape
            if names[0] in ("fnet", "cnet"):
                return (rng.standard_normal(shape) * np.sqrt(2.0 / (kh * kw * cout))).astype(np.float32)
            bound = 1.0 / np.sqrt(kh * kw * cin)
            return rng.uniform(-bound, bound, shape).astype(np.float32)
        if last == "bias":
            return None
        raise ValueError(f"fast_init: no rule for parameter {'/'.join(names)}")

    out = {}
    for coll in ("params", "batch_stats"):
        out[coll] = jax.tree_util.tree_map_with_path(leaf, abstract[coll])

    def fill_bias(tree, ab):        # biases share the fan-in of their sibling kernel
        res = {}
        for k, v in tree.items():
            if isinstance(v, dict):
                res[k] = fill_bias(v, ab[k])
            elif v is None:
                kh, kw, cin, _ = ab["kernel"].shape
                bound = 1.0 / np.sqrt(kh * kw * cin)
                res[k] = rng.uniform(-bound, bound, ab[k].shape).astype(np.float32)
            else:
                res[k] = v
        return res
    out["params"] = fill_bias(out["params"], abstract["params"])
    if cfg.wnorm:
        out["params"]["update_block"] = apply_weight_norm(
            jax.tree.map(jnp.asarray, out["params"]["update_block"]))
    return jax.tree.map(jnp.asarray, out)


class Encoded(NamedTuple):
    """Per-pair quantities computed once before the solve."""

    fmap1: jax.Array              # (B, h, w, fnet_dim)
    fmap2: jax.Array
    inp: jax.Array                # (B, h, w, cdim), after relu
    attn: Optional[jax.Array]     # (B, h*w, h*w) or None
    pyramid: Pyramid


def encode(variables, cfg: ModelConfig, image1, image2, bn_train: bool = False):
    """Runs both encoders on (B, H, W, 3) 0..255 images.

    Returns:
      (Encoded, new_batch_stats); batch statistics change only when `bn_train`.
    """
    params, stats = variables["params"], variables.get("batch_stats", {})
    mods = modules(cfg)
    i1, i2 = normalize_images(image1), normalize_images(image2)
    b = i1.shape[0]
    remat = cfg.remat != "none"
    fmaps, _ = apply_encoder(mods["fnet"], {"params": to_compute(cfg, params["fnet"])},
                             to_compute(cfg, jnp.concatenate([i1, i2], 0)), remat=remat)
    fmaps = to_f32(cfg, fmaps)               # correlation volume and lookup stay float32
    fmap1, fmap2 = fmaps[:b], fmaps[b:]
    cvars = {"params": to_compute(cfg, params["cnet"]), "batch_stats": stats["cnet"]}
    i1 = to_compute(cfg, i1)
    ctx, upd = apply_encoder(mods["cnet"], cvars, i1, bn_train, remat=remat)
    new_stats = {**stats, "cnet": upd} if bn_train else stats
    inp = jax.nn.relu(ctx)
    attn = (mods["attn"].apply({"params": to_compute(cfg, params["attn"])}, inp)
            if cfg.gma else None)
    pyramid = build_pyramid(fmap1, fmap2, cfg.corr_levels)
    return Encoded(fmap1, fmap2, inp, attn, pyramid), new_stats


@dataclasses.dataclass(frozen=True)
class DEQFunc:
    """f(z, args) = (hidden', coords') for z = (hidden, coords), args = FArgs.

    Hashable and compared by value (cfg, all_grad), so solvers may take it as a static argument.
    """

    cfg: ModelConfig
    all_grad: bool = False

    def __call__(self, z, args: FArgs):
        if self.cfg.remat == "all":          # keep only (z, args) for the backward pass
            return late_checkpoint(self._apply, perturb=(0,))(z, args)
        return self._apply(z, args)

    def _apply(self, z, args: FArgs):
        net, coords = z
        if not self.all_grad:            # official c.detach(): no gradient into c inside f
            coords = jax.lax.stop_gradient(coords)
        cfg = self.cfg
        corr = lookup(args.pyramid, coords, cfg.corr_radius)
        new_net, delta = UpdateBlock(cfg).apply(
            {"params": args.params}, to_compute(cfg, net), args.inp, to_compute(cfg, corr),
            to_compute(cfg, coords - args.coords0), args.attn, args.inp_proj)
        return to_f32(cfg, new_net), coords + to_f32(cfg, delta)


def f_args(variables, cfg: ModelConfig, enc: Encoded) -> FArgs:
    """Builds f's fixed arguments; folds the update block's weight norm once."""
    ub = variables["params"]["update_block"]
    ub = to_compute(cfg, fold_weight_norm(ub) if cfg.wnorm else ub)   # fold in float32
    b, h, w, _ = enc.inp.shape
    names = ["gru"] + [f"gru{i + 1}" for i in range(1, cfg.gru_layers)]
    proj = {n: context_projections(ub[n], enc.inp, cfg.hidden_dim, cfg.dilated_gru)
            for n in names}
    return FArgs(ub, enc.inp, enc.pyramid, coords_grid(b, h, w), to_compute(cfg, enc.attn), proj)


def decode(variables, cfg: ModelConfig, z, coords0) -> Tuple[jax.Array, jax.Array]:
    """z = (hidden, coords) -> (flow_up (B, 8h, 8w, 2), flow_lowres (B, h, w, 2))."""
    net, coords = z
    flow = coords - coords0
    mask = to_f32(cfg, MaskHead().apply({"params": to_compute(cfg, variables["params"]["mask"])},
                                        to_compute(cfg, net)))
    return convex_upsample(flow, mask), flow
