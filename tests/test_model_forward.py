"""Training forward (model_forward) and inference (estimate_flow) on the tiny variant."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.model import DEQConfig, ModelConfig, estimate_flow, init_model, model_forward
from deq_flow_jax.model import deq_flow as D
from deq_flow_jax.model import inference as I

CFG = ModelConfig.variant("tiny")


@pytest.fixture(scope="module")
def tiny():
    variables = init_model(CFG, jax.random.PRNGKey(0), (64, 64))
    rng = np.random.default_rng(0)
    im1 = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    im2 = np.roll(im1, 2, axis=2)
    return variables, jnp.asarray(im1), jnp.asarray(im2)


def test_train_forward_supervises_captured_states_and_updates_bn(tiny):
    variables, im1, im2 = tiny
    deq = DEQConfig(f_max_steps=4, n_losses=2)
    gt = jnp.ones((2, 64, 64, 2))

    @jax.jit
    def step(params, stats):
        def loss(p):
            out, new_stats = model_forward({"params": p, "batch_stats": stats}, CFG, deq, im1, im2,
                                           bn_train=True)
            weights = 0.8 ** jnp.arange(len(out.flow_predictions))[::-1]
            terms = jnp.stack([jnp.mean(jnp.abs(f - gt)) for f in out.flow_predictions])
            return jnp.sum(weights * terms), (out, new_stats)
        return jax.value_and_grad(loss, has_aux=True)(params)

    (val, (out, new_stats)), grads = step(variables["params"], variables["batch_stats"])
    assert len(out.flow_predictions) == 2
    assert all(f.shape == (2, 64, 64, 2) for f in out.flow_predictions)
    assert out.flow_lowres.shape == (2, 8, 8, 2) and out.hidden.shape == (2, 8, 8, 32)
    assert out.stats.nstep.shape == (2,) and out.jac_loss is None and out.sradius is None
    # Final flow decodes the final state.
    np.testing.assert_allclose(out.flow_predictions[-1][:, ::8, ::8].shape, (2, 8, 8, 2))
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    for part in ("fnet", "cnet", "update_block", "mask"):
        assert sum(float(jnp.sum(g * g)) for g in jax.tree.leaves(grads[part])) > 0, part
    old = variables["batch_stats"]["cnet"]["norm1"]["bn"]["mean"]
    assert float(jnp.abs(new_stats["cnet"]["norm1"]["bn"]["mean"] - old).max()) > 0
    # Frozen batch norm: statistics unchanged, output deterministic.
    out2, stats2 = model_forward(variables, CFG, deq, im1, im2, train=False, max_steps=3)
    assert len(out2.flow_predictions) == 1
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), stats2,
                                     variables["batch_stats"]))


def test_estimate_flow_any_size_jits_once_per_shape(tiny):
    variables, im1, im2 = tiny
    a = np.asarray(im1[0, :50, :60])
    b = np.asarray(im2[0, :50, :60])
    before = I._estimate._cache_size()
    r1 = estimate_flow(variables, CFG, a, b, max_steps=4)
    r2 = estimate_flow(variables, CFG, a + 1.0, b, max_steps=4)
    assert I._estimate._cache_size() == before + 1
    assert r1.flow.shape == (1, 50, 60, 2) and r1.flow_lowres.shape == (1, 7, 8, 2)
    assert r1.cache[0].shape == (1, 7, 8, 32)
    assert not np.allclose(r1.flow, r2.flow)


def test_estimate_flow_takes_unset_solver_settings_from_deq(tiny):
    """`deq=` (the checkpoint's stored DEQConfig) supplies every solver setting not passed:
    its solver, f_max_steps x eval_factor steps, tolerance; a passed setting wins."""
    variables, im1, im2 = tiny
    deq = DEQConfig(f_solver="naive", f_max_steps=2, eval_factor=1.5, f_tol=0.0)
    explicit = estimate_flow(variables, CFG, im1[:1], im2[:1], solver="naive", max_steps=3, tol=0.0)
    from_deq = estimate_flow(variables, CFG, im1[:1], im2[:1], deq=deq)
    np.testing.assert_array_equal(np.asarray(from_deq.flow), np.asarray(explicit.flow))
    one = estimate_flow(variables, CFG, im1[:1], im2[:1], deq=deq, max_steps=1)
    one_explicit = estimate_flow(variables, CFG, im1[:1], im2[:1], solver="naive", max_steps=1, tol=0.0)
    np.testing.assert_array_equal(np.asarray(one.flow), np.asarray(one_explicit.flow))
    assert not np.allclose(np.asarray(one.flow), np.asarray(explicit.flow))


def test_cache_reuses_the_fixed_point(tiny):
    variables, im1, im2 = tiny
    solved = estimate_flow(variables, CFG, im1[:1], im2[:1], solver="anderson", max_steps=4,
                           tol=1e-6)
    reused = estimate_flow(variables, CFG, im1[:1], im2[:1], solver="anderson", max_steps=4,
                           tol=1e-6, cache=solved.cache)
    # Restarting from the cache must keep improving, not start over: the residual after
    # another 4 steps from the cached state is below the one reached from scratch.
    assert float(reused.stats.abs_lowest[0]) < float(solved.stats.abs_lowest[0])
    with pytest.raises(ValueError, match=r"flow_init: expected shape \(1, 8, 8, 2\)"):
        estimate_flow(variables, CFG, im1[:1], im2[:1], flow_init=jnp.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"cache hidden: expected shape \(1, 8, 8, 32\)"):
        estimate_flow(variables, CFG, im1[:1], im2[:1], cache=(jnp.zeros((1, 8, 8, 3)),
                                                             solved.flow_lowres))


@pytest.mark.parametrize("name", ["tiny", "B", "L", "H", "G", "D", "GMA-B", "GMA-L"])
def test_every_variant_shapes(name):
    cfg = ModelConfig.variant(name)
    v = jax.eval_shape(functools.partial(D.init_variables, cfg, image_size=(64, 64)),
                       jax.random.PRNGKey(0))
    im = jax.ShapeDtypeStruct((1, 64, 80, 3), jnp.float32)
    out = jax.eval_shape(lambda v, a, b: I._estimate(v, a, b, None, None, cfg=cfg,
                                                     solver="anderson", max_steps=3, tol=1e-3,
                                                     stop_mode="abs", pad_mode="sintel"),
                         v, im, im)
    assert out.flow.shape == (1, 64, 80, 2)
    assert out.cache[0].shape == (1, 8, 10, cfg.hidden_dim)
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]))
    expected = {"B": 5.24e6, "H": 13.39e6, "GMA-B": 5.78e6, "L": 8.67e6}
    if name in expected:
        assert abs(n - expected[name]) / expected[name] < 0.01, n


@pytest.mark.slow
@pytest.mark.parametrize("name", ["D", "G"])
def test_d_and_g_run(name):
    cfg = ModelConfig.variant(name)
    v = init_model(cfg, jax.random.PRNGKey(0), (64, 64))
    im = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    r = estimate_flow(v, cfg, im, np.roll(im, 1, 2), max_steps=3)
    assert r.flow.shape == (1, 64, 64, 2) and bool(jnp.all(jnp.isfinite(r.flow)))
