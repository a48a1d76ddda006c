"""IFT through the model: model_forward(grad="ift") with the backward-solve probe.

A randomly initialised DEQ-Flow has no true fixed point in the coordinates (the flow head's
update does not vanish, so c drifts), which rules out comparing against a long unrolled
gradient here; the IFT rule itself is checked against closed forms in the solver tests.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.model import DEQConfig, ModelConfig, init_model, model_forward

CFG = ModelConfig.variant("tiny")


@pytest.mark.slow
def test_ift_forward_backward_runs_and_reports_the_backward_solve():
    from deq_flow_jax.adjoints import backward_probe
    variables = init_model(CFG, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    im1 = jnp.asarray(rng.uniform(0, 255, (1, 64, 64, 3)), jnp.float32)
    im2 = jnp.roll(im1, 2, axis=2)
    deq = DEQConfig(f_max_steps=6, grad="ift", b_max_steps=5, b_tol=1e-9, n_losses=2)

    def loss(params, probe):
        out, _ = model_forward({"params": params, "batch_stats": variables["batch_stats"]}, CFG,
                               deq, im1, im2, bwd_probe=probe)
        return sum(jnp.mean(jnp.abs(f)) for f in out.flow_predictions)

    g, probe_ct = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], backward_probe())
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    assert float(probe_ct[0]) == 5.0          # the backward solve ran its 5 steps
    assert sum(float(jnp.sum(x * x)) for x in jax.tree.leaves(g["update_block"])) > 0
