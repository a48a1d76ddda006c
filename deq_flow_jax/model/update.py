"""The update block: the body of f (motion encoder, ConvGRU(s), flow head), NHWC.

Parameter names follow the official `update_block` (encoder.convc1, gru.convz1,
flow_head.conv1, ...), with '.' replaced by nested dicts.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from deq_flow_jax.model.config import ModelConfig
from deq_flow_jax.model.gma import Aggregate
from deq_flow_jax.model.layers import Conv


class MotionEncoder(nn.Module):
    """corr (B,h,w,324) and flow (B,h,w,2) -> motion features (B,h,w,cat_dim), flow last."""

    cfg: ModelConfig

    @nn.compact
    def __call__(self, flow, corr):
        c = self.cfg
        cor = nn.relu(Conv(c.corr_c1, (1, 1), in_features=corr.shape[-1], name="convc1")(corr))
        cor = nn.relu(Conv(c.corr_c2, (3, 3), in_features=c.corr_c1, name="convc2")(cor))
        flo = nn.relu(Conv(c.flow_f1, (7, 7), in_features=2, name="convf1")(flow))
        flo = nn.relu(Conv(c.flow_f2, (3, 3), in_features=c.flow_f1, name="convf2")(flo))
        cat = jnp.concatenate([cor, flo], axis=-1)
        out = nn.relu(Conv(c.cat_dim - 2, (3, 3), in_features=cat.shape[-1], name="conv")(cat))
        return jnp.concatenate([out, flow], axis=-1)


def _gru_stage(mod: nn.Module, h, x, kernel: Sequence[int], dilation: int, suffix: str):
    """One gated update h <- (1-z) h + z q with z, r, q convolutions of one kernel shape."""
    hdim = h.shape[-1]
    hx = jnp.concatenate([h, x], axis=-1)
    cin = hx.shape[-1]
    z = jax.nn.sigmoid(Conv(hdim, kernel, dilation=dilation, in_features=cin,
                            name=f"convz{suffix}")(hx))
    r = jax.nn.sigmoid(Conv(hdim, kernel, dilation=dilation, in_features=cin,
                            name=f"convr{suffix}")(hx))
    q = jnp.tanh(Conv(hdim, kernel, dilation=dilation, in_features=cin,
                      name=f"convq{suffix}")(jnp.concatenate([r * h, x], axis=-1)))
    return (1.0 - z) * h + z * q


class SepConvGRU(nn.Module):
    """Horizontal (1x5) then vertical (5x1) ConvGRU; `dilated` adds a 3x3, dilation-4 stage (D).

    (B,h,w,hdim) hidden and (B,h,w,Cx) input -> new hidden (B,h,w,hdim).
    """

    dilated: bool = False

    @nn.compact
    def __call__(self, h, x):
        h = _gru_stage(self, h, x, (1, 5), 1, "1")
        h = _gru_stage(self, h, x, (5, 1), 1, "2")
        if self.dilated:
            h = _gru_stage(self, h, x, (3, 3), 4, "3")
        return h


class FlowHead(nn.Module):
    """3x3 conv -> relu -> 3x3 conv to 2 channels: (B,h,w,hdim) -> delta flow (B,h,w,2)."""

    hidden: int

    @nn.compact
    def __call__(self, x):
        y = nn.relu(Conv(self.hidden, (3, 3), in_features=x.shape[-1], name="conv1")(x))
        return Conv(2, (3, 3), in_features=self.hidden, name="conv2")(y)


class UpdateBlock(nn.Module):
    """One application of the f body: (net, inp, corr, flow, attn) -> (net', delta_flow).

    Args of __call__:
      net: (B, h, w, hdim) hidden state.
      inp: (B, h, w, cdim) context features (after relu).
      corr: (B, h, w, levels*(2r+1)^2) looked-up correlation.
      flow: (B, h, w, 2) current low-resolution flow.
      attn: (B, h*w, h*w) GMA attention, or None.
    """

    cfg: ModelConfig

    @nn.compact
    def __call__(self, net, inp, corr, flow, attn: Optional[jax.Array] = None
                 ) -> Tuple[jax.Array, jax.Array]:
        c = self.cfg
        motion = MotionEncoder(c, name="encoder")(flow, corr)
        if c.gma:
            glob = Aggregate(c.cat_dim, name="gma")(attn, motion)
            x = jnp.concatenate([inp, motion, glob], axis=-1)
        else:
            x = jnp.concatenate([inp, motion], axis=-1)
        net = SepConvGRU(c.dilated_gru, name="gru")(net, x)
        for i in range(1, c.gru_layers):
            net = SepConvGRU(c.dilated_gru, name=f"gru{i + 1}")(net, x)
        delta = FlowHead(c.flow_head_dim, name="flow_head")(net)
        return net, delta
