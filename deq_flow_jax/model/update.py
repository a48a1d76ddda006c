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
from deq_flow_jax.model.layers import Conv, torch_conv_init


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


class SplitConv(nn.Module):
    """A convolution of the channel concatenation of `parts`, without building it.

    Parameters are exactly those of `nn.Conv` on the concatenation (`kernel` (kh, kw, Cin, Cout),
    `bias`), so checkpoints do not change. A part given as an int is a channel block whose
    contribution was precomputed and is passed as `pre` (the context features' share, constant
    during the solve: computing it once per image pair saves a third of the GRU's FLOPs).
    """

    features: int
    kernel: Sequence[int] = (3, 3)
    dilation: int = 1

    @nn.compact
    def __call__(self, parts, pre=None):
        kh, kw = self.kernel
        widths = [p if isinstance(p, int) else p.shape[-1] for p in parts]
        cin = sum(widths)
        init = torch_conv_init(cin * kh * kw)
        k = self.param("kernel", init, (kh, kw, cin, self.features), jnp.float32)
        b = self.param("bias", init, (self.features,), jnp.float32)
        out = b if pre is None else pre + b
        off = 0
        for p, wdt in zip(parts, widths):
            if not isinstance(p, int):
                out = out + conv_nhwc(p, k[:, :, off:off + wdt], self.dilation)
            off += wdt
        return out


def conv_nhwc(x, kernel, dilation: int = 1):
    """Stride-1 convolution with PyTorch padding (kernel // 2 * dilation), NHWC / HWIO, no bias."""
    kh, kw = kernel.shape[:2]
    pad = [((kh // 2) * dilation,) * 2, ((kw // 2) * dilation,) * 2]
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), pad, rhs_dilation=(dilation, dilation),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


GRU_STAGES = (("1", (1, 5), 1), ("2", (5, 1), 1), ("3", (3, 3), 4))


def context_projections(gru_params: dict, inp, hdim: int, dilated: bool) -> dict:
    """Precomputed context share of every z/r/q convolution of one (Sep)ConvGRU.

    Args:
      gru_params: the GRU's parameters (plain kernels), e.g. params["gru"].
      inp: (B, h, w, cdim) context features.
      hdim: hidden channels (the kernel's first input block).
      dilated: include the D variant's third stage.

    Returns:
      {conv name: (B, h, w, hdim)} to pass to `SepConvGRU(..., pre=...)`.
    """
    c = inp.shape[-1]
    out = {}
    for suffix, _, dil in GRU_STAGES[: 3 if dilated else 2]:
        for g in "zrq":
            name = f"conv{g}{suffix}"
            out[name] = conv_nhwc(inp, gru_params[name]["kernel"][:, :, hdim:hdim + c], dil)
    return out


def _gru_stage(h, parts, kernel: Sequence[int], dilation: int, suffix: str, pre):
    """One gated update h <- (1-z) h + z q; parts = [inp (or its width), motion, ...]."""
    hdim = h.shape[-1]
    get = (lambda n: None) if pre is None else pre.get
    z = jax.nn.sigmoid(SplitConv(hdim, kernel, dilation, name=f"convz{suffix}")(
        [h] + parts, get(f"convz{suffix}")))
    r = jax.nn.sigmoid(SplitConv(hdim, kernel, dilation, name=f"convr{suffix}")(
        [h] + parts, get(f"convr{suffix}")))
    q = jnp.tanh(SplitConv(hdim, kernel, dilation, name=f"convq{suffix}")(
        [r * h] + parts, get(f"convq{suffix}")))
    return (1.0 - z) * h + z * q


class SepConvGRU(nn.Module):
    """Horizontal (1x5) then vertical (5x1) ConvGRU; `dilated` adds a 3x3, dilation-4 stage (D).

    (B,h,w,hdim) hidden and input parts [inp, motion, ...] (each (B,h,w,C); the context part
    may be given as its channel count when `pre` holds its precomputed projections) ->
    new hidden (B,h,w,hdim). The parameters equal those of convolutions of concat([h, *parts]).
    """

    dilated: bool = False

    @nn.compact
    def __call__(self, h, parts, pre=None):
        for suffix, kernel, dil in GRU_STAGES[: 3 if self.dilated else 2]:
            h = _gru_stage(h, list(parts), kernel, dil, suffix, pre)
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
      inp_proj: optional {gru name: context_projections(...)}: the context features' share of
        the GRU convolutions, computed once per pair (same result, fewer FLOPs per step).
    """

    cfg: ModelConfig

    @nn.compact
    def __call__(self, net, inp, corr, flow, attn: Optional[jax.Array] = None,
                 inp_proj: Optional[dict] = None) -> Tuple[jax.Array, jax.Array]:
        c = self.cfg
        motion = MotionEncoder(c, name="encoder")(flow, corr)
        ctx = inp.shape[-1] if inp_proj is not None else inp   # precomputed share, or the array
        if c.gma:
            glob = Aggregate(c.cat_dim, name="gma")(attn, motion)
            parts = [ctx, motion, glob]
        else:
            parts = [ctx, motion]
        net = SepConvGRU(c.dilated_gru, name="gru")(net, parts, None if inp_proj is None
                                                    else inp_proj.get("gru"))
        for i in range(1, c.gru_layers):
            name = f"gru{i + 1}"
            net = SepConvGRU(c.dilated_gru, name=name)(net, parts, None if inp_proj is None
                                                       else inp_proj.get(name))
        delta = FlowHead(c.flow_head_dim, name="flow_head")(net)
        return net, delta
