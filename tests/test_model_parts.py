"""Model parts against independent references: correlation lookup, upsampler, weight norm, padding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.model import DEQConfig, ModelConfig
from deq_flow_jax.model.corr import build_pyramid, lookup
from deq_flow_jax.model.padding import compute_padding, pad, unpad
from deq_flow_jax.model.upsample import convex_upsample
from deq_flow_jax.model.weight_norm import apply_weight_norm, fold_weight_norm


def _bilinear_zero(img, x, y):
    """grid_sample(align_corners=True, zeros) at one pixel coordinate, written with corners."""
    h, w = img.shape
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    val = 0.0
    for xi, wx in ((x0, x0 + 1 - x), (x0 + 1, x - x0)):
        for yi, wy in ((y0, y0 + 1 - y), (y0 + 1, y - y0)):
            if 0 <= xi < w and 0 <= yi < h:
                val += wx * wy * img[yi, xi]
    return val


def test_lookup_matches_bilinear_reference_and_channel_order():
    rng = np.random.default_rng(0)
    b, h, w, c, r, levels = 1, 6, 8, 5, 2, 2
    f1 = rng.standard_normal((b, h, w, c)).astype(np.float32)
    f2 = rng.standard_normal((b, h, w, c)).astype(np.float32)
    coords = rng.uniform(-3, 10, (b, h, w, 2)).astype(np.float32)
    out = np.asarray(lookup(build_pyramid(jnp.asarray(f1), jnp.asarray(f2), levels),
                            jnp.asarray(coords), r))
    k = 2 * r + 1
    assert out.shape == (b, h, w, levels * k * k)
    vol = np.einsum("yxc,vuc->yxvu", f1[0], f2[0]) / np.sqrt(c)
    for y1 in range(h):
        for x1 in range(w):
            img = vol[y1, x1]
            for lvl in range(levels):
                if lvl:
                    img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
                    img = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2).mean((1, 3))
                cx, cy = coords[0, y1, x1] / 2 ** lvl
                for i in range(k):          # x offset (major), official order
                    for j in range(k):      # y offset (minor)
                        ref = _bilinear_zero(img, cx + i - r, cy + j - r)
                        got = out[0, y1, x1, lvl * k * k + i * k + j]
                        assert abs(got - ref) < 1e-4, (y1, x1, lvl, i, j, got, ref)


def test_lookup_gradient_wrt_coords_matches_finite_differences():
    rng = np.random.default_rng(1)
    f1 = jnp.asarray(rng.standard_normal((1, 4, 4, 3)), jnp.float32)
    f2 = jnp.asarray(rng.standard_normal((1, 4, 4, 3)), jnp.float32)
    pyr = build_pyramid(f1, f2, 2)
    coords = jnp.asarray(rng.uniform(0.2, 2.8, (1, 4, 4, 2)), jnp.float32)  # away from integers
    coords = coords.at[..., :].set(jnp.floor(coords) + 0.3)
    fn = lambda c: jnp.sum(lookup(pyr, c, 1) * jnp.arange(18.0))
    g = jax.grad(fn)(coords)
    eps = 1e-2
    e = jnp.zeros_like(coords).at[0, 1, 2, 0].set(eps)
    fd = (fn(coords + e) - fn(coords - e)) / (2 * eps)
    np.testing.assert_allclose(float(g[0, 1, 2, 0]), float(fd), rtol=1e-3, atol=1e-3)


def _upsample_reference(flow, mask):
    """The official formula with explicit loops: unfold 3x3 (zero pad), softmax over taps."""
    b, h, w, _ = flow.shape
    m = mask.reshape(b, h, w, 9, 8, 8)
    m = np.exp(m - m.max(3, keepdims=True))
    m /= m.sum(3, keepdims=True)
    fp = np.pad(8 * flow, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, 8 * h, 8 * w, 2))
    for y in range(h):
        for x in range(w):
            for a in range(8):
                for c in range(8):
                    acc = 0
                    for t in range(9):
                        acc = acc + m[0, y, x, t, a, c] * fp[0, y + t // 3, x + t % 3]
                    out[0, 8 * y + a, 8 * x + c] = acc
    return out


def test_convex_upsample_matches_reference():
    rng = np.random.default_rng(2)
    flow = rng.standard_normal((1, 3, 4, 2)).astype(np.float32)
    mask = rng.standard_normal((1, 3, 4, 576)).astype(np.float32)
    got = np.asarray(convex_upsample(jnp.asarray(flow), jnp.asarray(mask)))
    np.testing.assert_allclose(got, _upsample_reference(flow, mask), atol=1e-5)


def test_weight_norm_round_trip_and_scale_invariance():
    rng = np.random.default_rng(3)
    params = {"a": {"kernel": jnp.asarray(rng.standard_normal((3, 3, 4, 5)), jnp.float32),
                    "bias": jnp.ones(5)}, "gamma": jnp.zeros(1)}
    wn = apply_weight_norm(params)
    assert set(wn["a"]) == {"weight_g", "weight_v", "bias"} and wn["a"]["weight_g"].shape == (5,)
    back = fold_weight_norm(wn)
    np.testing.assert_allclose(back["a"]["kernel"], params["a"]["kernel"], rtol=1e-5, atol=1e-6)
    wn["a"]["weight_v"] = wn["a"]["weight_v"] * 3.0          # direction only
    np.testing.assert_allclose(fold_weight_norm(wn)["a"]["kernel"], params["a"]["kernel"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("h,w,mode,expect", [
    (436, 1024, "sintel", (2, 2, 0, 0)), (375, 1242, "kitti", (0, 1, 3, 3)),
    (370, 1226, "sintel", (3, 3, 3, 3)), (64, 64, "kitti", (0, 0, 0, 0))])
def test_padding_matches_official_rule(h, w, mode, expect):
    p = compute_padding(h, w, mode)
    assert tuple(p) == expect
    x = jnp.arange(h * w * 2, dtype=jnp.float32).reshape(1, h, w, 2)
    y = pad(x, p)
    assert y.shape[1] % 8 == 0 and y.shape[2] % 8 == 0
    np.testing.assert_array_equal(unpad(y, p), x)
    if p.bottom:
        np.testing.assert_array_equal(y[:, -1, p.left:p.left + w], x[:, -1])   # edge replicated


def test_configs_are_hashable_and_round_trip():
    cfg = ModelConfig.variant("GMA-L")
    assert cfg.gma and cfg.hidden_dim == 192 and cfg.flow_head_dim == 384
    assert hash(cfg) == hash(ModelConfig.from_dict(cfg.to_dict()))
    assert ModelConfig.variant("B", old_version=True).flow_head_dim == 256
    assert ModelConfig.variant("H").flow_head_dim == 512
    d = ModelConfig.variant("D")
    assert d.dilated_gru and d.gru_layers == 2
    with pytest.raises(ValueError, match="unknown model variant 'Q'"):
        ModelConfig.variant("Q")
    deq = DEQConfig(f_max_steps=36, n_losses=6)
    assert deq.loss_steps() == (6, 12, 18, 24, 30, 36) and deq.eval_max_steps == 54
    assert DEQConfig(indexing=(10,), f_max_steps=40).loss_steps() == (10, 40)
    assert DEQConfig.from_dict(deq.to_dict()) == deq


def test_small_encoder_variant_s():
    """Variant S: RAFT-small's bottleneck encoders, 1/8 resolution, the same values with the
    block-by-block remat path, and far fewer FLOPs than the basic encoder (XLA cost analysis)."""
    from deq_flow_jax.model.encoder import Encoder, apply_encoder

    cfg = ModelConfig.variant("S")
    assert cfg.encoder == "small" and ModelConfig.variant("B").encoder == "basic"
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 48, 3), minval=-1, maxval=1)
    enc = Encoder(16, "batch", "small")
    v = jax.jit(enc.init)(jax.random.PRNGKey(1), x)
    y, stats = jax.jit(lambda v, x: apply_encoder(enc, v, x, bn_train=True))(v, x)
    y2, stats2 = jax.jit(lambda v, x: apply_encoder(enc, v, x, bn_train=True, remat=True))(v, x)
    assert y.shape == (2, 4, 6, 16)
    np.testing.assert_allclose(y2, y, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), stats2, stats)
    flops = {}
    for kind in ("basic", "small"):
        e = Encoder(16, "instance", kind)
        shapes = jax.eval_shape(e.init, jax.random.PRNGKey(1), x)
        cost = jax.jit(e.apply).lower(shapes, x).cost_analysis()
        flops[kind] = (cost[0] if isinstance(cost, list) else cost)["flops"]
    assert flops["small"] < flops["basic"] / 10
    with pytest.raises(ValueError, match="encoder"):
        ModelConfig.variant("B", encoder="tiny")
