"""Jacobian tools against exact Jacobians."""
import jax
import jax.numpy as jnp
import numpy as np

from deq_flow_jax.equilibrium import jacobian_frobenius_sq, spectral_radius


def _tanh_layer(z, args):
    W, c = args
    return {"h": jnp.tanh(jnp.einsum("ij,bj->bi", W, z["h"]) + c), "u": 0.5 * z["u"] + z["h"][:, :2]}


def test_hutchinson_matches_exact_frobenius():
    rng = np.random.default_rng(0)
    W = jnp.asarray(rng.normal(size=(5, 5)), jnp.float32)
    c = jnp.asarray(rng.normal(size=(5,)), jnp.float32)
    z = {"h": jnp.asarray(rng.normal(size=(2, 5)), jnp.float32), "u": jnp.ones((2, 2))}
    flat = lambda z: jnp.concatenate([z["h"].reshape(-1), z["u"].reshape(-1)])  # noqa: E731
    unflat = lambda x: {"h": x[:10].reshape(2, 5), "u": x[10:].reshape(2, 2)}  # noqa: E731
    J = jax.jacfwd(lambda x: flat(_tanh_layer(unflat(x), (W, c))))(flat(z))
    exact = float(jnp.sum(J ** 2)) / 14.0      # normalised by the number of elements of z
    est = jax.jit(jacobian_frobenius_sq, static_argnums=(0, 4))(_tanh_layer, z, (W, c), jax.random.PRNGKey(1), 2000)
    np.testing.assert_allclose(est, exact, rtol=0.08)


def test_hutchinson_is_differentiable_wrt_args():
    """For fn = s * A z the estimate is s^2 * (its value at s = 1) probe by probe, so
    d/ds = 2 s * est(1) exactly."""
    A = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 4)), jnp.float32)
    fn = lambda z, s: s * jnp.einsum("bij,bj->bi", A, z)  # noqa: E731
    z = jnp.ones((3, 4))
    key = jax.random.PRNGKey(5)
    est1, g = jax.jit(jax.value_and_grad(lambda s: jacobian_frobenius_sq(fn, z, s, key, 8)))(1.0)
    g3 = jax.jit(jax.grad(lambda s: jacobian_frobenius_sq(fn, z, s, key, 8)))(3.0)
    np.testing.assert_allclose(g, 2.0 * est1, rtol=1e-5)
    np.testing.assert_allclose(g3, 6.0 * est1, rtol=1e-5)
    assert 0.2 < float(est1) / (float(jnp.sum(A ** 2)) / 12.0) < 5.0   # a sane scale


def test_power_iteration_matches_largest_abs_eigenvalue():
    rng = np.random.default_rng(3)
    mats = []
    for lam in (0.9, -0.7):                    # dominant eigenvalue positive / negative
        q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
        eig = np.array([lam, 0.5, -0.4, 0.3, 0.2, 0.1])
        S = rng.normal(size=(6, 6)) * 0.1 + np.eye(6)   # non-symmetric similarity
        mats.append(S @ q @ np.diag(eig) @ q.T @ np.linalg.inv(S))
    A = jnp.asarray(np.stack(mats), jnp.float32)
    fn = lambda z, A: jnp.einsum("bij,bj->bi", A, z)  # noqa: E731
    rho = spectral_radius(fn, jnp.zeros((2, 6)), A, n_iters=200)
    want = [np.max(np.abs(np.linalg.eigvals(m))) for m in mats]
    np.testing.assert_allclose(rho, want, rtol=1e-3)
