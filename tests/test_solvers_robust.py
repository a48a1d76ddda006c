"""Robustness (NaN, singular systems, zero updates), jit / vmap, no retracing, input errors."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_solvers_affine import affine, affine_problem  # noqa: E402

from deq_flow_jax.adjoints import NoGrad, Phantom
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration

SOLVERS = [Anderson(), Broyden(), FixedPointIteration()]


def nan_after_blowup(z, a):
    """Sample 0 contracts to 2; sample 1 (no fixed point) drifts and turns NaN once z > 3."""
    del a
    good = 0.5 * z + 1.0
    bad = jnp.where(z > 3.0, jnp.nan, z + 1.0)
    return jnp.where(jnp.arange(z.shape[0])[:, None] == 0, good, bad)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_nan_fn_returns_finite_best_not_converged(solver):
    sol = jax.jit(lambda z: fixed_point(nan_after_blowup, z, None, solver=solver, max_steps=30, tol=1e-4,
                                        adjoint=NoGrad()))(jnp.zeros((2, 3)))
    assert np.all(np.isfinite(np.asarray(sol.value)))
    np.testing.assert_array_equal(sol.stats.converged, [True, False])
    np.testing.assert_allclose(sol.value[0], 2.0, atol=1e-3)
    assert np.all(np.isfinite(np.asarray(sol.stats.abs_lowest[0])))


@pytest.mark.parametrize("solver", [Anderson(ridge=0.0), Broyden()], ids=lambda s: type(s).__name__)
def test_singular_system_and_zero_update(solver):
    """f(z) = z + 1 has no fixed point: Anderson's Gram matrix is rank one (singular without a
    ridge) and Broyden's secant denominator is zero; neither may produce NaN."""
    sol = jax.jit(lambda z: fixed_point(lambda z, a: z + 1.0, z, None, solver=solver, max_steps=12, tol=1e-3,
                                        adjoint=NoGrad()))(jnp.zeros((2, 4)))
    assert np.all(np.isfinite(np.asarray(sol.value)))
    assert not np.any(np.asarray(sol.stats.converged))
    np.testing.assert_allclose(sol.stats.abs_lowest, 2.0, rtol=1e-6)   # ||1|| over 4 entries


def test_jit_vmap_and_no_retrace():
    A, b, zs = affine_problem((0.5, 0.7, 0.8), d=6)
    A2 = jnp.stack([A, A[::-1]])      # (N=2, B=3, d, d)
    b2 = jnp.stack([b, b[::-1]])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(A, b):
        return fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Anderson(ridge=1e-8), max_steps=40,
                           tol=1e-5, adjoint=Phantom(1))

    out = run(A, b)
    out2 = run(A * 0.9, b + 1.0)          # same shapes: no new trace (assert_max_traces raises)
    assert not np.allclose(out.value, out2.value)
    np.testing.assert_allclose(out.value, zs, atol=1e-4)
    vm = jax.jit(jax.vmap(lambda A, b: fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Anderson(ridge=1e-8),
                                           max_steps=40, tol=1e-5, adjoint=Phantom(1))))(A2, b2)
    np.testing.assert_allclose(vm.value[0], out.value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vm.value[1], out.value[::-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(vm.stats.nstep[1], out.stats.nstep[::-1])


def test_batch_of_one_equals_sample_of_batch():
    A, b, _ = affine_problem((0.5, 0.9), d=6)
    run = jax.jit(lambda A, b: fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Broyden(), max_steps=40,
                                           tol=1e-5, adjoint=NoGrad()))
    full, one = run(A, b), run(A[1:], b[1:])
    np.testing.assert_allclose(full.value[1:], one.value, rtol=1e-6)
    np.testing.assert_array_equal(full.stats.nstep[1:], one.stats.nstep)
    np.testing.assert_allclose(full.stats.abs_trace[:, 1:], one.stats.abs_trace, rtol=1e-6)


def test_bad_inputs_raise_clear_errors():
    z = jnp.zeros((2, 3))
    f = lambda z, a: z  # noqa: E731
    with pytest.raises(ValueError, match="stop_mode"):
        fixed_point(f, z, None, stop_mode="max")
    with pytest.raises(ValueError, match="max_steps"):
        fixed_point(f, z, None, max_steps=0)
    with pytest.raises(ValueError, match="capture"):
        fixed_point(f, z, None, max_steps=5, capture=(6,))
    with pytest.raises(ValueError, match="batch size"):
        fixed_point(lambda z, a: z, {"a": z, "b": jnp.zeros((3, 1))}, None)
    with pytest.raises(ValueError, match="shape"):
        fixed_point(lambda z, a: z[:, :2], z, None)
    with pytest.raises(ValueError, match="floating"):
        fixed_point(f, jnp.zeros((2, 3), jnp.int32), None)
    with pytest.raises(ValueError, match="history size"):
        Anderson(m=0)
