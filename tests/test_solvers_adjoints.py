"""Gradient rules: IFT against the closed form and finite differences, Phantom(k) against
explicit unrolled steps, NoGrad, per-term captured adjoints, the backward-solve probe."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads
from test_solvers_affine import affine, affine_problem  # noqa: E402  (tests/ is on sys.path)

from deq_flow_jax.adjoints import IFT, NoGrad, Phantom, backward_probe
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import Anderson, Broyden, FixedPointIteration, solve


def test_ift_matches_closed_form():
    A, b, zs = affine_problem((0.5, 0.8), d=8)
    w = jnp.asarray(np.random.default_rng(1).normal(size=b.shape), jnp.float32)
    adj = IFT(solver=Broyden(), max_steps=60, tol=1e-6)

    def loss(A, b):
        sol = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Anderson(ridge=1e-8), max_steps=80,
                          tol=1e-6, adjoint=adj)
        return jnp.sum(w * sol.value)

    gA, gb = jax.jit(jax.grad(loss, argnums=(0, 1)))(A, b)
    # dL/db = (I - A)^-T w, dL/dA = outer((I - A)^-T w, z*)
    I = np.eye(8)[None]
    lhs = np.transpose(I - np.asarray(A, np.float64), (0, 2, 1))
    u = np.linalg.solve(lhs, np.asarray(w, np.float64)[..., None])[..., 0]
    np.testing.assert_allclose(gb, u, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gA, u[:, :, None] * zs[:, None, :], rtol=1e-4, atol=1e-4)


def test_ift_check_grads_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        W = jnp.asarray(0.6 * rng.normal(size=(4, 4)) / 2.0)
        c = jnp.asarray(rng.normal(size=(2, 4)))

        def f(z, args):
            W, c = args
            return jnp.tanh(z @ W.T + c)

        def g(W, c):
            sol = fixed_point(f, jnp.zeros((2, 4)), (W, c), solver=Anderson(ridge=1e-12), max_steps=100,
                              tol=1e-13, adjoint=IFT(solver=Anderson(ridge=1e-12), max_steps=100, tol=1e-13))
            return sol.value

        check_grads(jax.jit(g), (W, c), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_phantom_equals_unrolled_steps():
    rng = np.random.default_rng(3)
    W = jnp.asarray(0.3 * rng.normal(size=(6, 6)), jnp.float32)
    c = jnp.asarray(rng.normal(size=(3, 6)), jnp.float32)

    def f(z, args):
        W, c = args
        return {"h": jnp.tanh(z["h"] @ W.T + c)}

    z0 = {"h": jnp.zeros((3, 6))}
    for k, tau in ((1, 1.0), (3, 0.6)):
        def loss_phantom(W, c):
            # capture=(30,) with NoGrad: the final best iterate z* (best after the last possible step)
            sol = fixed_point(f, z0, (W, c), solver=Anderson(), max_steps=30, tol=1e-4, adjoint=Phantom(k, tau),
                              capture=(30,), capture_adjoint=NoGrad())
            return jnp.sum(sol.value["h"] ** 2), sol

        def loss_unrolled(W, c, zstar):
            z = zstar
            for _ in range(k):
                z = (1 - tau) * z + tau * f({"h": z}, (W, c))["h"]
            return jnp.sum(z ** 2)

        (val, sol), grads = jax.jit(jax.value_and_grad(loss_phantom, argnums=(0, 1), has_aux=True))(W, c)
        z_nograd = sol.captured[0]["h"]
        want_val, want = jax.jit(jax.value_and_grad(loss_unrolled, argnums=(0, 1)))(W, c, z_nograd)
        np.testing.assert_allclose(val, want_val, rtol=1e-6)
        for a, b in zip(grads, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_nograd_and_per_term_capture_adjoints():
    A, b, _ = affine_problem((0.5, 0.7), d=5)

    def loss(b, adj, cadj):
        sol = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=FixedPointIteration(), max_steps=20,
                          tol=1e-5, adjoint=adj, capture=(2, 4), capture_adjoint=cadj)
        return jnp.sum(sol.value) + 10 * jnp.sum(sol.captured[0]) + 100 * jnp.sum(sol.captured[1])

    g = jax.jit(jax.grad(loss), static_argnums=(1, 2))(b, NoGrad(), (Phantom(1), NoGrad()))
    # only captured[0] with one phantom step z <- A z + b contributes: d/db = 10 per element
    np.testing.assert_allclose(g, 10.0 * np.ones(b.shape), rtol=1e-6)
    g = jax.jit(jax.grad(loss), static_argnums=(1, 2))(b, NoGrad(), NoGrad())
    np.testing.assert_array_equal(g, np.zeros(b.shape))


def test_closed_over_arrays_get_gradients():
    A, b, _ = affine_problem((0.5, 0.6), d=5)

    def via_args(b):
        return jnp.sum(fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Broyden(), max_steps=40, tol=1e-6,
                                   adjoint=IFT(solver=Broyden(), tol=1e-6)).value)

    def via_closure(b, n):
        # closes over a float tracer (b, differentiated) and an integer tracer of the outer jit (n)
        fn = lambda z, _: affine(z, (A, b * n.astype(b.dtype)))  # noqa: E731
        return jnp.sum(fixed_point(fn, jnp.zeros_like(b), None, solver=Broyden(), max_steps=40, tol=1e-6,
                                   adjoint=IFT(solver=Broyden(), tol=1e-6)).value)

    np.testing.assert_allclose(jax.jit(jax.grad(via_closure))(b, jnp.int32(1)), jax.jit(jax.grad(via_args))(b),
                               rtol=1e-5)


def test_backward_probe_reports_backward_solve():
    A, b, _ = affine_problem((0.5, 0.9), d=6)
    adj = IFT(solver=Anderson(), max_steps=30, tol=1e-4)

    def loss(b, probe):
        sol = fixed_point(affine, jnp.zeros_like(b), (A, b), solver=Anderson(), max_steps=40, tol=1e-5,
                          adjoint=adj, bwd_probe=probe)
        return jnp.sum(sol.value ** 2), sol.value

    (_, z), (gb, gp) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(b, backward_probe())
    # an independent backward solve u = g + A^T u with the same settings
    g = 2 * z
    At = jnp.transpose(A, (0, 2, 1))
    _, _, st = jax.jit(lambda g: solve(lambda u, gg: jnp.einsum("bij,bj->bi", At, u) + gg, jnp.zeros_like(g), g,
                                       solver=Anderson(), max_steps=30, tol=1e-4))(g)
    want = [np.mean(st.nstep), np.mean(st.abs_lowest), np.mean(st.rel_lowest)]
    np.testing.assert_allclose(gp, want, rtol=1e-4)
    assert gp[0] > 2
    # without IFT the probe's gradient is zero
    def loss2(b, probe):
        return jnp.sum(fixed_point(affine, jnp.zeros_like(b), (A, b), adjoint=Phantom(1), bwd_probe=probe).value)
    np.testing.assert_array_equal(jax.jit(jax.grad(loss2, argnums=1))(b, backward_probe()), np.zeros(3))
