"""bf16 mixed precision (config.mixed_precision / ModelConfig.compute_dtype) on the tiny variant.

The reference is the float32 model with the same weights: bf16 keeps 8 mantissa bits (relative
rounding 2^-9 ~ 0.2% per operation), so after a few solver steps the flows of random-weight
networks agree only loosely; the tolerances below are explicit and far below the flow's scale
while far above float32 noise.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.model import ModelConfig, estimate_flow, init_model
from deq_flow_jax.model import deq_flow as D

CFG32 = ModelConfig.variant("tiny")
CFG16 = dataclasses.replace(CFG32, compute_dtype="bfloat16")


def _pair(seed=0, shape=(1, 32, 40, 3)):
    rng = np.random.default_rng(seed)
    im1 = rng.uniform(0, 255, shape).astype(np.float32)
    return im1, np.roll(im1, (1, 2), axis=(1, 2))


def test_compute_dtype_field_validates_and_round_trips():
    assert CFG32.compute_dtype == "float32" and not CFG32.mixed_precision
    assert CFG16.mixed_precision
    with pytest.raises(ValueError, match="compute_dtype"):
        ModelConfig.variant("tiny", compute_dtype="float16")
    assert ModelConfig.from_dict(CFG16.to_dict()) == CFG16
    old = CFG32.to_dict()
    del old["compute_dtype"]                    # model_config.json written before the field
    assert ModelConfig.from_dict(old).compute_dtype == "float32"


def test_bf16_internals_are_bf16_and_correlation_float32():
    # Shapes and dtypes only (jax.eval_shape / make_jaxpr trace, nothing runs).
    v = jax.eval_shape(lambda: D.init_variables(CFG16, jax.random.PRNGKey(0)))
    im1, im2 = (jax.ShapeDtypeStruct(x.shape, x.dtype) for x in _pair())
    enc, _ = jax.eval_shape(lambda v, a, b: D.encode(v, CFG16, a, b), v, im1, im2)
    assert enc.inp.dtype == jnp.bfloat16                   # context encoder output
    assert enc.fmap1.dtype == jnp.float32                  # cast back before the volume
    assert all(c.dtype == jnp.float32 for c in enc.pyramid)
    args = jax.eval_shape(lambda v, e: D.f_args(v, CFG16, e), v, enc)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(args.params))
    z0 = (jax.ShapeDtypeStruct(enc.inp.shape[:3] + (CFG16.hidden_dim,), jnp.float32),
          args.coords0)
    z1 = jax.eval_shape(D.DEQFunc(CFG16), z0, args)
    assert z1[0].dtype == jnp.float32 and z1[1].dtype == jnp.float32   # solver state float32
    # The traced f: every convolution is bf16, every correlation contraction float32.
    jaxpr = jax.make_jaxpr(D.DEQFunc(CFG16))(z0, args)
    eqns = [e for e in jaxpr.jaxpr.eqns]
    convs = [e for e in eqns if e.primitive.name == "conv_general_dilated"]
    dots = [e for e in eqns if e.primitive.name == "dot_general"]
    assert convs and all(e.invars[0].aval.dtype == jnp.bfloat16 for e in convs)
    assert dots and all(e.invars[0].aval.dtype == jnp.float32 for e in dots)   # the lookup
    # Encoders: convolutions in bf16 too; the float32 model has none.
    enc_jaxpr = str(jax.make_jaxpr(lambda v, a, b: D.encode(v, CFG16, a, b))(v, im1, im2))
    enc_jaxpr32 = str(jax.make_jaxpr(lambda v, a, b: D.encode(v, CFG32, a, b))(v, im1, im2))
    assert "bf16" in enc_jaxpr and "bf16" not in enc_jaxpr32


def test_bf16_estimate_flow_close_to_float32():
    v = init_model(CFG32, jax.random.PRNGKey(1))
    im1, im2 = _pair(1)
    r32 = estimate_flow(v, CFG32, im1, im2, solver="naive", max_steps=4)
    r16 = estimate_flow(v, CFG16, im1, im2, solver="naive", max_steps=4)
    assert r16.flow.dtype == jnp.float32 and r16.cache[0].dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(r16.flow)))
    f32, f16 = np.asarray(r32.flow_lowres), np.asarray(r16.flow_lowres)
    scale = np.abs(f32).max()
    assert scale > 0.05                                    # the comparison is not trivial
    err = np.abs(f16 - f32).max()
    # bf16 rounds to 2^-9 relative per op, compounded through ~30 convolutions per step and 4
    # steps; measured 0.0039 px on a 0.62 px scale (0.6%): 5% leaves an 8x margin.
    assert err < 0.05 * scale, (err, scale)
    assert err > 0.0                                       # bf16 really changed the numbers


@pytest.mark.slow   # ~45 s; the bf16 forward and gradient checks stay in make test
def test_training_step_with_mixed_precision(tmp_path):
    """One AdamW step of the real objective (make_flow_loss_fn) with config.mixed_precision=True.

    (The shard_map train step itself is model-agnostic and tested in test_training_step.py;
    calling the objective directly keeps the compile to ~10 s.)
    """
    import optax
    from training_helpers import tiny_config

    from deq_flow_jax.train.config import check_config, deq_config, model_config
    from deq_flow_jax.train.objective import make_flow_loss_fn
    from deq_flow_jax.train.optim import adamw_without_lr

    c = tiny_config(tmp_path, mixed_precision=True, **{
        "deq.f_max_steps": 2, "deq.f_solver": "naive", "data.crop_size": (32, 32)})
    check_config(c)                                        # no longer refused
    mcfg, dcfg = model_config(c), deq_config(c)
    assert mcfg.compute_dtype == "bfloat16"
    v = init_model(mcfg, jax.random.PRNGKey(0))
    loss_fn = make_flow_loss_fn(mcfg, dcfg, bn_train=True)
    rng = np.random.default_rng(0)
    im1 = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    batch = {"image1": im1, "image2": np.roll(im1, 1, axis=2),
             "flow": np.ones((2, 32, 32, 2), np.float32), "valid": np.ones((2, 32, 32), np.float32)}

    tx = adamw_without_lr(1.0, 1e-4)

    @jax.jit
    def train_step(params, stats):
        (loss, (metrics, new_stats)), g = jax.value_and_grad(loss_fn, has_aux=True)(
            params, jnp.zeros(()), stats, batch, jax.random.PRNGKey(0), jnp.arange(2))
        upd, _ = tx.update(g, tx.init(params), params)
        new = optax.apply_updates(params, jax.tree.map(lambda u: -1e-3 * u, upd))
        return loss, metrics, new_stats, g, new

    loss, metrics, new_stats, g, new = jax.device_get(train_step(v["params"], v["batch_stats"]))
    assert np.isfinite(loss) and loss > 0 and np.isfinite(metrics["epe"])
    for tree in (g, new_stats, new):                       # f32 grads, stats, master params
        assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in jax.tree.leaves(tree))
    # batch norm statistics were updated (in float32) from the bf16 context encoder
    assert np.abs(new_stats["cnet"]["norm1"]["bn"]["mean"]).max() > 0
    assert np.abs(g["fnet"]["conv1"]["kernel"]).max() > 0               # grads reach the encoder
    assert np.abs(g["update_block"]["flow_head"]["conv2"]["weight_v"]).max() > 0
    assert not np.array_equal(new["fnet"]["conv1"]["kernel"], v["params"]["fnet"]["conv1"]["kernel"])


def test_bf16_gma_ift_jacobian_gradients_trace_in_float32():
    """GMA + IFT backward + correction terms + Jacobian / spectral radius terms trace under bf16
    and give float32 loss and gradients (abstract evaluation only: nothing is compiled)."""
    from deq_flow_jax.model import DEQConfig, model_forward
    cfg = ModelConfig.variant("GMA-tiny", compute_dtype="bfloat16")
    deq = DEQConfig(f_max_steps=3, b_max_steps=3, grad="ift", n_losses=2)
    v = jax.eval_shape(lambda: D.init_variables(cfg, jax.random.PRNGKey(0)))
    im = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)

    def loss(params, a, b, stats):
        out, new_stats = model_forward({"params": params, "batch_stats": stats}, cfg, deq, a, b,
                                       jac_probes=1, sradius_iters=2, key=jax.random.PRNGKey(0),
                                       bn_train=True)
        total = sum(jnp.mean(f) for f in out.flow_predictions) + out.jac_loss
        return total + jnp.sum(out.sradius), (out, new_stats)

    (val, (out, stats)), g = jax.eval_shape(jax.value_and_grad(loss, has_aux=True),
                                            v["params"], im, im, v["batch_stats"])
    assert val.dtype == jnp.float32 and out.hidden.dtype == jnp.float32
    assert all(f.dtype == jnp.float32 for f in out.flow_predictions)
    assert {x.dtype for x in jax.tree.leaves((g, stats))} == {jnp.dtype(jnp.float32)}
