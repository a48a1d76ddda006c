"""Feature and context encoders (RAFT's BasicEncoder and SmallEncoder), NHWC.

`basic` (every published DEQ-Flow variant): conv7x7/2 -> 64, norm, relu; residual stages
64, 96 (/2), 128 (/2); conv1x1 -> out_dim. `small` (RAFT-small's encoder, used by this
project's CPU variant `S`): conv7x7/2 -> 32, bottleneck stages 32, 64 (/2), 96 (/2); about
30x fewer FLOPs. Output resolution is 1/8 of the input. The feature encoder uses instance norm (no
parameters); the context encoder uses batch norm with running statistics
(collection `batch_stats`), updated only when `bn_train=True`. `apply_encoder(..., remat=True)`
runs the same parameters block by block with each residual block under
`remat.late_checkpoint` (and the stem, conv1-norm1-relu, as one more): only block inputs are
kept for the backward pass.
"""
from __future__ import annotations

import flax.linen as nn

from deq_flow_jax.model.layers import Conv, Norm
from deq_flow_jax.model.remat import late_checkpoint

# kind -> (stem channels, ((channels, stride of the first block) per stage))
ARCHS = {"basic": (64, ((64, 1), (96, 2), (128, 2))),
         "small": (32, ((32, 1), (64, 2), (96, 2)))}


class ResidualBlock(nn.Module):
    """conv3x3-norm-relu, conv3x3-norm-relu, (+ strided 1x1 conv + norm shortcut), relu(x + y).

    Attributes:
      planes: output channels.
      norm: `instance` or `batch`.
      stride: 1 or 2 (stride of the first conv and of the shortcut).
    """

    planes: int
    norm: str = "instance"
    stride: int = 1

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        y = Conv(self.planes, (3, 3), self.stride, kaiming=True, name="conv1")(x)
        y = nn.relu(Norm(self.norm, name="norm1")(y, bn_train))
        y = Conv(self.planes, (3, 3), 1, kaiming=True, name="conv2")(y)
        y = nn.relu(Norm(self.norm, name="norm2")(y, bn_train))
        if self.stride != 1:
            x = Conv(self.planes, (1, 1), self.stride, kaiming=True, name="downsample")(x)
            x = Norm(self.norm, name="norm3")(x, bn_train)
        return nn.relu(x + y)


class BottleneckBlock(nn.Module):
    """RAFT's bottleneck block: conv1x1 to planes/4, conv3x3 (stride), conv1x1 to planes, each
    followed by norm and relu, (+ strided 1x1 conv + norm shortcut), relu(x + y).

    Attributes:
      planes: output channels.
      norm: `instance` or `batch`.
      stride: 1 or 2 (stride of the 3x3 conv and of the shortcut).
    """

    planes: int
    norm: str = "instance"
    stride: int = 1

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        mid = self.planes // 4
        y = nn.relu(Norm(self.norm, name="norm1")(Conv(mid, (1, 1), 1, kaiming=True, name="conv1")(x),
                                                  bn_train))
        y = Conv(mid, (3, 3), self.stride, kaiming=True, name="conv2")(y)
        y = nn.relu(Norm(self.norm, name="norm2")(y, bn_train))
        y = Conv(self.planes, (1, 1), 1, kaiming=True, name="conv3")(y)
        y = nn.relu(Norm(self.norm, name="norm3")(y, bn_train))
        if self.stride != 1:
            x = Conv(self.planes, (1, 1), self.stride, kaiming=True, name="downsample")(x)
            x = Norm(self.norm, name="norm4")(x, bn_train)
        return nn.relu(x + y)


BLOCKS = {"basic": ResidualBlock, "small": BottleneckBlock}


class _Stem(nn.Module):
    """conv7x7/2 (`conv1`) -> norm (`norm1`) -> relu: the encoder's first layer, named as in
    `Encoder` so that `apply_encoder` can run it on the encoder's own variables."""

    norm: str = "instance"
    dim: int = 64

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        x = Conv(self.dim, (7, 7), 2, kaiming=True, name="conv1")(x)
        return nn.relu(Norm(self.norm, name="norm1")(x, bn_train))


class Encoder(nn.Module):
    """RAFT BasicEncoder (`kind="basic"`) or SmallEncoder (`kind="small"`):
    (B, H, W, 3) in [-1, 1] -> (B, H/8, W/8, out_dim).

    Attributes:
      out_dim: output channels.
      norm: `instance` (feature net) or `batch` (context net).
      kind: `basic` or `small` (see ARCHS).
    """

    out_dim: int
    norm: str = "instance"
    kind: str = "basic"

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        stem, stages = ARCHS[self.kind]
        block = BLOCKS[self.kind]
        x = Conv(stem, (7, 7), 2, kaiming=True, name="conv1")(x)
        x = nn.relu(Norm(self.norm, name="norm1")(x, bn_train))
        for i, (dim, stride) in enumerate(stages):
            x = block(dim, self.norm, stride, name=f"layer{i + 1}_0")(x, bn_train)
            x = block(dim, self.norm, 1, name=f"layer{i + 1}_1")(x, bn_train)
        return Conv(self.out_dim, (1, 1), 1, kaiming=True, name="conv2")(x)


def apply_encoder(enc: Encoder, variables: dict, x, bn_train: bool = False, remat: bool = False):
    """`enc.apply(variables, x, bn_train)`, optionally with late-rematerialised residual blocks.

    Args:
      enc: the Encoder module (its attributes give the block widths and norm).
      variables: {"params": ..., ["batch_stats": ...]} of `enc`.
      x: (B, H, W, 3) normalised images (or the compute dtype's equivalent).
      bn_train: batch statistics from the batch (and updated running statistics).
      remat: run the stem and each residual block under `late_checkpoint` (same values and
        gradients).

    Returns:
      (features (B, H/8, W/8, out_dim), new batch_stats or None when not `bn_train`).
    """
    if not remat:
        if bn_train:
            y, upd = enc.apply(variables, x, True, mutable=["batch_stats"])
            return y, upd["batch_stats"]
        return enc.apply(variables, x, False), None
    params, stats = variables["params"], variables.get("batch_stats", {})
    new_stats = dict(stats)

    def part(module, p, s, y, *extra):
        """`module` on its variables (p, s) under `late_checkpoint`; -> (y, new stats or s)."""
        def run(p, s, y):
            v = {"params": p} if s is None else {"params": p, "batch_stats": s}
            if bn_train and s is not None:
                out, upd = module.apply(v, y, *extra, mutable=["batch_stats"])
                return out, upd["batch_stats"]
            return module.apply(v, y, *extra), s
        return late_checkpoint(run, perturb=(2,))(p, s, y)

    # The stem's variables are the encoder's top-level `conv1` / `norm1` entries.
    stem, stages = ARCHS[enc.kind]
    block = BLOCKS[enc.kind]
    y, s = part(_Stem(enc.norm, stem), {k: params[k] for k in ("conv1", "norm1") if k in params},
                {"norm1": stats["norm1"]} if "norm1" in stats else None, x, bn_train)
    new_stats.update(s or {})
    for i, (dim, stride) in enumerate(stages):
        for j, st in ((0, stride), (1, 1)):
            name = f"layer{i + 1}_{j}"
            y, s = part(block(dim, enc.norm, st), params[name], stats.get(name), y, bn_train)
            if s is not None:
                new_stats[name] = s
    y = Conv(enc.out_dim, (1, 1), 1, kaiming=True).apply({"params": params["conv2"]}, y)
    return y, (new_stats if bn_train else None)
