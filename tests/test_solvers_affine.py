"""Solvers on affine contractions z = A z + b (closed form (I - A)^-1 b) and a tanh problem."""
import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.adjoints import NoGrad
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration

RATES = (0.3, 0.6, 0.9)


def affine_problem(rates, d=16, seed=0, scale=1.0):
    """Per-sample symmetric A_b with spectral radius rates[b]; returns (A, b, z*) float32."""
    rng = np.random.default_rng(seed)
    mats = []
    for r in rates:
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        eig = np.linspace(-r, r, d)
        mats.append(q @ np.diag(eig) @ q.T)
    A = np.stack(mats)
    b = scale * rng.normal(size=(len(rates), d))
    zs = np.linalg.solve(np.eye(d)[None] - A, b[..., None])[..., 0]
    return jnp.asarray(A, jnp.float32), jnp.asarray(b, jnp.float32), zs


def affine(z, args):
    A, b = args
    return jnp.einsum("bij,bj->bi", A, z) + b


# The official ridge (1e-4) is not scaled by the residuals: once ||g||^2 falls below it, Anderson
# degrades to averaging the history. These small problems stop at residuals ~1e-4, so the
# accelerated regime needs a smaller ridge (the flow state, D ~ 1e6, has residuals >> 1e-2).
ANDERSON = Anderson(m=6, ridge=1e-8)


@pytest.mark.parametrize("solver", [ANDERSON, Broyden(), FixedPointIteration()], ids=lambda s: type(s).__name__)
def test_reaches_closed_form(solver):
    A, b, zs = affine_problem(RATES)
    tol = 1e-4
    sol = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=solver, max_steps=100, tol=tol, adjoint=NoGrad())
    assert np.all(np.asarray(sol.stats.converged))
    assert np.all(np.asarray(sol.stats.abs_lowest) < tol)
    # ||z - z*|| <= ||f(z) - z|| / (1 - rate) for a symmetric contraction
    err = np.linalg.norm(np.asarray(sol.value) - zs, axis=1)
    assert np.all(err <= tol / (1 - np.asarray(RATES)) + 1e-5), err
    steps = np.asarray(sol.stats.nstep)
    assert steps[0] < steps[1] < steps[2], steps   # slower contraction, more steps, per sample


def test_anderson_fewer_evaluations_than_iteration():
    A, b, zs = affine_problem((0.97, 0.97), d=32, seed=1, scale=10.0)
    kw = dict(max_steps=400, tol=1e-3, adjoint=NoGrad())
    and_ = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=ANDERSON, **kw)
    it = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=FixedPointIteration(), **kw)
    assert np.all(np.asarray(and_.stats.converged)) and np.all(np.asarray(it.stats.converged))
    # for both solvers nstep counts f-evaluations
    assert np.all(2 * np.asarray(and_.stats.nstep) < np.asarray(it.stats.nstep)), (and_.stats.nstep, it.stats.nstep)
    np.testing.assert_allclose(np.asarray(and_.value), zs, atol=1e-3 / (1 - 0.97))  # tol / (1 - rate)


def test_broyden_nonlinear_tanh():
    rng = np.random.default_rng(3)
    d = 32
    W = rng.normal(size=(2, d, d))
    W = W / np.linalg.norm(W, 2, axis=(1, 2), keepdims=True) * np.array([0.5, 0.95])[:, None, None]
    c = rng.normal(size=(2, d))
    args = (jnp.asarray(W, jnp.float32), jnp.asarray(c, jnp.float32))

    def f(z, a):
        return jnp.tanh(jnp.einsum("bij,bj->bi", a[0], z) + a[1])

    for solver in (Broyden(), Broyden(memory=4)):     # unbounded memory; a wrapping ring buffer
        sol = fixed_point(f, jnp.zeros((2, d)), args, solver=solver, max_steps=60, tol=1e-5, adjoint=NoGrad())
        assert np.all(np.asarray(sol.stats.converged)), solver
        res = np.linalg.norm(np.asarray(f(sol.value, args) - sol.value), axis=1)
        assert np.all(res < 1e-5), (solver, res)
        assert np.all(np.asarray(sol.stats.nstep) < 30), solver


def test_rel_stop_mode_and_trace_layout():
    A, b, _ = affine_problem(RATES)
    sol = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=ANDERSON, max_steps=50, tol=1e-5,
                      stop_mode="rel", adjoint=NoGrad())
    st = sol.stats
    assert st.abs_trace.shape == (50, 3) and st.rel_trace.shape == (50, 3)
    assert st.nstep.dtype == jnp.int32 and st.converged.dtype == bool
    fz = affine(sol.value, (A, b))
    rel = np.linalg.norm(np.asarray(fz - sol.value), axis=1) / np.linalg.norm(np.asarray(fz), axis=1)
    # the returned value is f(x) of the best step: its own residual is rate * (that step's)
    assert np.all(rel < 1e-5)
    for i in range(3):
        n = int(st.nstep[i])
        np.testing.assert_allclose(st.rel_trace[n - 1, i], st.rel_lowest[i], rtol=1e-6)
        np.testing.assert_allclose(st.rel_trace[n:, i], st.rel_lowest[i], rtol=1e-6)  # frozen after the stop
