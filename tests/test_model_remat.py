"""`ModelConfig.remat`: rematerialisation changes memory scheduling, never values or names."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from deq_flow_jax.model import DEQConfig, ModelConfig, init_model, model_forward
from deq_flow_jax.model import deq_flow as D


def test_remat_field_validates_and_round_trips():
    with pytest.raises(ValueError, match="remat"):
        ModelConfig.variant("tiny", remat="sometimes")
    cfg = ModelConfig.variant("tiny", remat="encoders")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "remat"}).remat == "none"


def _loss_and_grads(cfg, variables, batch, deq):
    def loss(p):
        out, _ = model_forward({"params": p, "batch_stats": variables["batch_stats"]}, cfg, deq,
                               batch["image1"], batch["image2"], bn_train=True)
        return sum(jnp.mean(jnp.abs(f - batch["flow"])) for f in out.flow_predictions)
    return jax.jit(jax.value_and_grad(loss))(variables["params"])


@pytest.mark.parametrize("mode, deq", [
    # `all` covers `encoders` (the same encoder path) plus f: a phantom correction term and the
    # IFT backward solve, both through the checkpointed f, with batch norm in training mode.
    ("all", DEQConfig(grad="ift", f_max_steps=4, f_tol=0.0, n_losses=2, b_max_steps=4, b_tol=0.0)),
])
def test_remat_gives_the_same_loss_and_gradients(mode, deq):
    base = ModelConfig.variant("tiny")
    variables = init_model(base, jax.random.PRNGKey(0), (48, 64))
    rng = np.random.default_rng(0)
    im1 = rng.uniform(0, 255, (2, 48, 64, 3)).astype(np.float32)
    batch = {"image1": jnp.asarray(im1), "image2": jnp.asarray(np.roll(im1, 2, axis=2)),
             "flow": jnp.full((2, 48, 64, 2), 1.5, jnp.float32)}
    remat = dataclasses.replace(base, remat=mode)
    # Same parameter tree: checkpoints move freely between the settings.
    chex.assert_trees_all_equal_shapes(init_model(remat, jax.random.PRNGKey(0), (48, 64)), variables)
    l0, g0 = _loss_and_grads(base, variables, batch, deq)
    l1, g1 = _loss_and_grads(remat, variables, batch, deq)
    np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
    # Remat lets XLA fuse and order the float32 sums differently; batch norm on a batch of two and
    # the unconverged solves amplify that to about 2e-3 of a leaf's norm on a CPU without
    # AVX-512 (1e-4 overall), against a relative error of order 1 where a checkpoint drops or
    # reroutes a gradient. Conv biases before a batch norm get a gradient of ~0 (noise), so a leaf
    # is compared only where its norm is at least 1e-3 of the largest leaf's.
    chex.assert_trees_all_equal_shapes(g1, g0)
    (f1, _), (f0, _) = ravel_pytree(g1), ravel_pytree(g0)
    assert np.linalg.norm(f1 - f0) <= 1e-3 * np.linalg.norm(f0)
    l0s = jax.tree.leaves(g0)
    largest = max(float(np.linalg.norm(b)) for b in l0s)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(g1), l0s):
        if np.linalg.norm(b) >= 1e-3 * largest:
            err = np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b)
            assert err <= 1e-2, (jax.tree_util.keystr(path), err)
    assert sum(float(jnp.sum(g * g)) for g in jax.tree.leaves(g1["fnet"])) > 0


def _encoder_grad(cfg, size=(128, 192)):
    variables = init_model(cfg, jax.random.PRNGKey(0), size)
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, *size, 3)), jnp.float32)

    def loss(p):
        enc, _ = D.encode({"params": p, "batch_stats": variables["batch_stats"]}, cfg, x, x[:, ::-1])
        return jnp.sum(enc.fmap1 ** 2) + jnp.sum(enc.inp ** 2)
    return jax.jit(jax.grad(loss)).lower(variables["params"]).compile()


def test_remat_lowers_the_compiled_memory_of_the_encoders_gradient():
    """The point of the setting, checked on XLA's own buffer assignment (deterministic): the
    encoders' backward pass needs less temporary memory. (Plain `jax.checkpoint` does not
    achieve this on XLA:CPU, which merges the recomputation back into the forward pass.)"""
    plain = _encoder_grad(ModelConfig.variant("tiny"))
    remat = _encoder_grad(ModelConfig.variant("tiny", remat="encoders"))
    # measured 85 -> 35 MB at 128x192
    assert (remat.memory_analysis().temp_size_in_bytes
            < 0.8 * plain.memory_analysis().temp_size_in_bytes)
    # The recomputed convolutions survive optimisation (XLA merges plain jax.checkpoint's away).
    assert remat.as_text().count("convolution") > plain.as_text().count("convolution")


def test_late_checkpoint_matches_the_plain_function_on_pytrees():
    from deq_flow_jax.model.remat import late_checkpoint

    def fn(params, x, extra):
        h = jnp.tanh(x @ params["w1"] + params["b"])
        return {"out": h @ params["w2"], "aux": jnp.sum(h)}, extra

    rng = np.random.default_rng(0)
    params = {"w1": jnp.asarray(rng.standard_normal((5, 7)), jnp.float32),
              "w2": jnp.asarray(rng.standard_normal((7, 3)), jnp.float32),
              "b": jnp.zeros((7,), jnp.float32)}
    x = jnp.asarray(rng.standard_normal((4, 5)), jnp.float32)

    def loss(f, p, x):
        out, _ = f(p, x, None)
        return jnp.sum(out["out"] ** 2) + out["aux"]
    for perturb in (None, (1,)):
        late = late_checkpoint(fn, perturb=perturb)
        chex.assert_trees_all_close(late(params, x, None), fn(params, x, None))
        g_late = jax.jit(jax.grad(lambda p, x: loss(late, p, x), argnums=(0, 1)))(params, x)
        g_ref = jax.grad(lambda p, x: loss(fn, p, x), argnums=(0, 1))(params, x)
        chex.assert_trees_all_close(g_late, g_ref, rtol=1e-6, atol=1e-6)
