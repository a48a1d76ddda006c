"""The shard_map train step on a small Flax model: 1 vs 2 devices, AdamW reference, NaN skip."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from deq_flow_jax.train.optim import adamw_without_lr, onecycle_linear
from deq_flow_jax.train.parallel import make_mesh, replicate, shard_batch, to_host
from deq_flow_jax.train.state import create_train_state
from deq_flow_jax.train.step import make_train_step


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(8, (3, 3))(x))
        return nn.Conv(2, (3, 3))(x)


def _loss_fn(params, probe, batch_stats, batch, key, sample_idx):
    noise = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (1,)))(sample_idx)
    x = batch["x"] + 0.01 * noise[:, :, None, None]
    pred = TinyNet().apply({"params": params}, x)
    loss = jnp.mean(jnp.abs(pred - batch["y"])) + 0.0 * jnp.sum(probe)
    return loss, ({"mae": loss}, batch_stats)


def _setup(devices, seed=0):
    net = TinyNet()
    variables = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, 8, 8, 3)))
    tx = adamw_without_lr(1.0, 1e-4)
    sched = onecycle_linear(1e-2, 50, 0.05)
    mesh = make_mesh(devices)
    state = replicate(create_train_state(variables, tx, seed), mesh)
    return state, make_train_step(_loss_fn, tx, sched, mesh), mesh, variables, sched


def _batch(seed, b=4):
    r = np.random.RandomState(seed)
    return {"x": r.randn(b, 8, 8, 3).astype(np.float32), "y": r.randn(b, 8, 8, 2).astype(np.float32)}


def test_two_devices_equal_one_device_whole_batch():
    assert len(jax.devices()) >= 2, "conftest must force 2 CPU devices"
    s1, step1, m1, _, _ = _setup(jax.devices()[:1])
    s2, step2, m2, _, _ = _setup(jax.devices()[:2])
    for i in range(3):
        b = _batch(i)
        s1, met1 = step1(s1, shard_batch(b, m1))
        s2, met2 = step2(s2, shard_batch(b, m2))
        jax.block_until_ready((s1, s2))   # CPU fake devices: block every step (ECOSYSTEM.md)
        np.testing.assert_allclose(met1["loss"], met2["loss"], rtol=1e-5)
    chex.assert_trees_all_close(to_host(s1.params), to_host(s2.params), atol=1e-5, rtol=1e-5)
    # and the parameters did move
    _, _, _, v0, _ = _setup(jax.devices()[:1])
    diff = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(),
                        to_host(s1.params), v0["params"])
    assert max(jax.tree.leaves(diff)) > 1e-4


def test_step_matches_optax_adamw_with_clipping():
    """Our lr-outside-the-optimiser update equals optax.adamw(schedule) after clipping."""
    state, step, mesh, variables, sched = _setup(jax.devices()[:1])
    ref_tx = optax.chain(optax.clip_by_global_norm(1.0),
                         optax.adamw(sched, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4))
    params = variables["params"]
    opt = ref_tx.init(params)
    base = jax.random.key_data(jax.random.PRNGKey(0 ^ 0x5EED))
    for i in range(3):
        b = _batch(10 + i)
        key = jax.random.fold_in(jax.random.wrap_key_data(base), i)
        g, _ = jax.grad(_loss_fn, has_aux=True)(params, jnp.zeros(3), {}, jax.tree.map(jnp.asarray, b), key,
                               jnp.arange(4))
        upd, opt = ref_tx.update(g, opt, params)
        params = optax.apply_updates(params, upd)
        state, met = step(state, shard_batch(b, mesh))
        assert np.isclose(met["lr"], sched(i))
    chex.assert_trees_all_close(to_host(state.params), params, atol=1e-6, rtol=1e-5)


def test_non_finite_gradient_is_skipped_and_counted():
    state, step, mesh, _, _ = _setup(jax.devices()[:2])
    state, _ = step(state, shard_batch(_batch(0), mesh))
    before = to_host(state)
    bad = _batch(1)
    bad["x"][3, 0, 0, 0] = np.nan          # one sample on the second device only
    state, met = step(state, shard_batch(bad, mesh))
    jax.block_until_ready(state)
    after = to_host(state)
    assert float(met["finite"]) == 0.0 and not np.isfinite(float(met["grad_norm"]))
    assert int(after.skipped) == 1 and int(after.step) == int(before.step) + 1
    chex.assert_trees_all_equal(after.params, before.params)
    chex.assert_trees_all_equal(after.opt_state, before.opt_state)
    state, met = step(state, shard_batch(_batch(2), mesh))   # training goes on
    assert float(met["finite"]) == 1.0 and int(to_host(state.skipped)) == 1


def test_step_compiles_once():
    state, _, mesh, _, sched = _setup(jax.devices()[:2])
    traced = chex.assert_max_traces(n=1)(_loss_fn)
    step = make_train_step(traced, adamw_without_lr(1.0, 1e-4), sched, mesh)
    for i in range(3):
        state, _ = step(state, shard_batch(_batch(i), mesh))
        jax.block_until_ready(state)
    chex.clear_trace_counter()


def test_batch_not_divisible_raises():
    from deq_flow_jax.train.parallel import check_batch_size
    with pytest.raises(ValueError, match="batch_size=3"):
        check_batch_size(3, make_mesh(jax.devices()[:2]))


def test_ema_follows_the_applied_updates_and_skips_with_them():
    """ema <- d ema + (1 - d) params after each applied update, d = min(decay, (1+t)/(10+t))."""
    from deq_flow_jax.train.state import ema_decay_at, has_ema, state_variables
    net = TinyNet()
    variables = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    tx, sched, mesh = adamw_without_lr(1.0, 1e-4), onecycle_linear(1e-2, 50, 0.05), make_mesh(jax.devices()[:1])
    state = replicate(create_train_state(variables, tx, 0, ema=True), mesh)
    assert has_ema(state)
    step = make_train_step(_loss_fn, tx, sched, mesh, ema_decay=0.5)
    ema = to_host(state.params)
    for i in range(3):
        bad = i == 1
        b = _batch(i)
        if bad:
            b["x"][0, 0, 0, 0] = np.nan
        state, met = step(state, shard_batch(b, mesh))
        host = to_host(state)
        if not bad:
            d = float(ema_decay_at(0.5, i))
            ema = jax.tree.map(lambda e, p: d * e + (1 - d) * p, ema, host.params)
        chex.assert_trees_all_close(host.ema_params, ema, atol=1e-6)
    assert float(ema_decay_at(0.5, 0)) == pytest.approx(0.1) and float(ema_decay_at(0.5, 100)) == 0.5
    # Validation and inference read the average; the raw weights have moved on from it.
    chex.assert_trees_all_equal(state_variables(host)["params"], host.ema_params)
    assert not np.allclose(host.ema_params["Conv_0"]["kernel"], host.params["Conv_0"]["kernel"])
    plain = replicate(create_train_state(variables, tx, 0), mesh)
    with pytest.raises(ValueError, match="ema_params"):
        step(plain, shard_batch(_batch(0), mesh))
