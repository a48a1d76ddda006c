"""Small building blocks shared by the model parts: a PyTorch-padded convolution and norms.

All tensors are NHWC. Convolutions take PyTorch's explicit symmetric padding
(`kernel // 2 * dilation`), not XLA's 'SAME' (which pads stride-2 convolutions
asymmetrically and would break parity with the official weights).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def torch_conv_init(fan_in: int):
    """PyTorch's default Conv2d initialiser (uniform +-1/sqrt(fan_in)), for kernel and bias."""
    bound = 1.0 / max(fan_in, 1) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)
    return init


def Conv(features: int, kernel: Sequence[int] = (3, 3), stride: int = 1, dilation: int = 1,
         use_bias: bool = True, kaiming: bool = False, in_features: int | None = None,
         name: str | None = None) -> nn.Conv:
    """A `flax.linen.Conv` with PyTorch padding and PyTorch-style initialisation.

    Args:
      features: output channels.
      kernel: (kh, kw).
      stride: spatial stride.
      dilation: kernel dilation.
      use_bias: add a bias.
      kaiming: kaiming-normal (fan_out, relu) kernel init as in the official encoders;
        otherwise PyTorch's default uniform(+-1/sqrt(fan_in)) (needs `in_features`).
      in_features: input channels (for the default initialiser's fan-in).
      name: module name (parameters `kernel` (kh, kw, Cin, Cout) and `bias` (Cout,)).

    Input (B, H, W, Cin) -> output (B, H', W', features).
    """
    kh, kw = kernel
    pad = [((kh // 2) * dilation,) * 2, ((kw // 2) * dilation,) * 2]
    fan_in = (in_features or features) * kh * kw
    if kaiming:
        kinit = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    else:
        kinit = torch_conv_init(fan_in)
    return nn.Conv(features, (kh, kw), strides=(stride, stride), padding=pad,
                   kernel_dilation=(dilation, dilation), use_bias=use_bias,
                   kernel_init=kinit, bias_init=torch_conv_init(fan_in), name=name)


def instance_norm(x, eps: float = 1e-5):
    """Instance norm without affine parameters (torch InstanceNorm2d defaults), NHWC.

    Statistics of a bfloat16 input are taken in float32 (as torch autocast does); the result
    has the input's dtype. A float32 input is computed exactly as before.
    """
    if x.dtype != jnp.float32:
        return instance_norm(x.astype(jnp.float32), eps).astype(x.dtype)
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jnp.reciprocal(jnp.sqrt(var + eps))


class Norm(nn.Module):
    """`instance` (no parameters) or `batch` norm (torch eps 1e-5, momentum 0.1).

    Attributes:
      kind: `instance` | `batch` | `none`.
    """

    kind: str = "instance"

    @nn.compact
    def __call__(self, x, bn_train: bool = False):
        if self.kind == "instance":
            return instance_norm(x)
        if self.kind == "batch":
            return nn.BatchNorm(use_running_average=not bn_train, momentum=0.9, epsilon=1e-5,
                                name="bn")(x)
        if self.kind == "none":
            return x
        raise ValueError(f"unknown norm {self.kind!r}")
