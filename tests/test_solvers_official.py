"""With B = 1 the solvers reproduce the official loops step by step (float64).

The reference is a NumPy re-implementation of the official algorithms
(``tests/_official_reference.py``): same iterates (compared through every step's
residual and the captured states), same returned state, same step count.
"""
import _official_reference as ref  # tests/ is on sys.path (pytest rootdir-less import mode)
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.adjoints import NoGrad
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration

D = 24
CAPTURE = (2, 5, 9, 30)


def _problem(rate):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(D, D))
    W *= rate / np.linalg.norm(W, 2)
    c = rng.normal(size=D)
    z0 = 0.1 * rng.normal(size=D)
    return W, c, z0


@pytest.mark.parametrize("name,stop_mode,tol,max_steps", [
    ("anderson", "abs", 1e-9, 40),
    ("anderson", "rel", 1e-30, 14),     # never converges: runs to max_steps
    ("naive", "rel", 1e-6, 40),
    ("broyden", "abs", 1e-9, 40),
    ("broyden", "rel", 1e-30, 14),
])
def test_matches_official_loop(name, stop_mode, tol, max_steps):
    with jax.enable_x64(True):
        W, c, z0 = _problem(0.9)
        f_np = lambda z: np.tanh(W @ z + c)  # noqa: E731
        solver = {"anderson": Anderson(m=4, ridge=1e-4, beta=1.0), "naive": FixedPointIteration(),
                  "broyden": Broyden()}[name]
        ref_fn = {"anderson": lambda *a, **k: ref.anderson(*a, m=4, lam=1e-4, **k), "naive": ref.naive,
                  "broyden": ref.broyden}[name]
        capture = tuple(i for i in CAPTURE if i <= max_steps)
        best, caps, nstep, lowest, res = ref_fn(f_np, z0, max_steps, tol, stop_mode=stop_mode, indexing=capture)

        def fn(z, args):
            W, c = args
            return {"z": jnp.tanh(z["z"] @ W.T + c)}

        sol = fixed_point(fn, {"z": jnp.asarray(z0)[None]}, (jnp.asarray(W), jnp.asarray(c)), solver=solver,
                          max_steps=max_steps, tol=tol, stop_mode=stop_mode, adjoint=NoGrad(), capture=capture,
                          capture_adjoint=NoGrad())
        st = sol.stats
        n = len(res)
        # every evaluated iterate: its abs and rel residuals, in order
        np.testing.assert_allclose(np.asarray(st.abs_trace[:n, 0]), [a for a, _ in res], rtol=1e-7, atol=1e-13)
        np.testing.assert_allclose(np.asarray(st.rel_trace[:n, 0]), [r for _, r in res], rtol=1e-7, atol=1e-13)
        # rows after the stop are filled with the lowest value
        np.testing.assert_allclose(np.asarray(st.abs_trace[n:, 0]), lowest["abs"], rtol=1e-6, atol=1e-13)
        assert int(st.nstep[0]) == nstep
        np.testing.assert_allclose(np.asarray(sol.value["z"][0]), best, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(st.abs_lowest[0]), lowest["abs"], rtol=1e-6, atol=1e-13)
        np.testing.assert_allclose(float(st.rel_lowest[0]), lowest["rel"], rtol=1e-6, atol=1e-13)
        assert bool(st.converged[0]) == ((lowest[stop_mode]) < tol)
        # captured states: the official list holds those reached; ours also fills the others
        assert caps, "the reference reached no capture index"
        for i, want in caps:
            got = sol.captured[capture.index(i)]["z"][0]
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


def test_capture_rules():
    """Captured = best after step i; unreached -> final best; before the first candidate -> z0."""
    W, c, z0 = _problem(0.5)
    fn = lambda z, a: jnp.tanh(z @ a[0].T + a[1])  # noqa: E731
    args = (jnp.asarray(W, jnp.float32), jnp.asarray(c, jnp.float32))
    z0 = jnp.asarray(z0, jnp.float32)[None]
    sol = jax.jit(lambda z0, args: fixed_point(fn, z0, args, solver=Anderson(), max_steps=40, tol=1e-4,
                                               adjoint=NoGrad(), capture=(1, 2, 4, 4, 40),
                                               capture_adjoint=NoGrad()))(z0, args)
    np.testing.assert_array_equal(sol.captured[0], z0)
    np.testing.assert_array_equal(sol.captured[1], z0)
    np.testing.assert_array_equal(sol.captured[2], sol.captured[3])
    assert int(sol.stats.nstep[0]) < 40
    np.testing.assert_array_equal(sol.captured[4], sol.value)
    sol4 = jax.jit(lambda z0, args: fixed_point(fn, z0, args, solver=Anderson(), max_steps=4, tol=0.0,
                                                adjoint=NoGrad()))(z0, args)
    assert int(sol4.stats.nstep[0]) in (3, 4)
    np.testing.assert_allclose(sol.captured[2], sol4.value, rtol=1e-6)
