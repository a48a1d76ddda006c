"""Feature and context encoders (RAFT's BasicEncoder), NHWC.

conv7x7/2 -> 64, norm, relu; residual stages 64, 96 (/2), 128 (/2); conv1x1 -> out_dim.
Output resolution is 1/8 of the input. The feature encoder uses instance norm (no
parameters); the context encoder uses batch norm with running statistics
(collection `batch_stats`), updated only when `bn_train=True`. With `remat`, each residual
block is wrapped in `flax.linen.remat` (same parameter names): only block inputs are kept for
the backward pass.
"""
from __future__ import annotations

import flax.linen as nn

from deq_flow_jax.model.layers import Conv, Norm


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


class Encoder(nn.Module):
    """RAFT BasicEncoder: (B, H, W, 3) in [-1, 1] -> (B, H/8, W/8, out_dim).

    Attributes:
      out_dim: output channels.
      norm: `instance` (feature net) or `batch` (context net).
      remat: recompute each residual block in the backward pass instead of storing it.
    """

    out_dim: int
    norm: str = "instance"
    remat: bool = False

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        x = Conv(64, (7, 7), 2, kaiming=True, name="conv1")(x)
        x = nn.relu(Norm(self.norm, name="norm1")(x, bn_train))
        # static_argnums counts self as 0: bn_train (a Python bool) is argument 2.
        block = nn.remat(ResidualBlock, static_argnums=(2,)) if self.remat else ResidualBlock
        for i, (dim, stride) in enumerate(((64, 1), (96, 2), (128, 2))):
            x = block(dim, self.norm, stride, name=f"layer{i + 1}_0")(x, bn_train)
            x = block(dim, self.norm, 1, name=f"layer{i + 1}_1")(x, bn_train)
        return Conv(self.out_dim, (1, 1), 1, kaiming=True, name="conv2")(x)
