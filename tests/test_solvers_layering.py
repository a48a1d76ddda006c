"""Layers point down (equilibrium -> adjoints -> solvers), one solver-name registry, one
stop-mode check, and a solver / adjoint contract checked by type, not by attribute probing."""
import dataclasses
import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from deq_flow_jax.adjoints import AbstractAdjoint, NoGrad, Phantom, backward_probe
from deq_flow_jax.equilibrium import fixed_point
from deq_flow_jax.solvers import (
    SOLVER_NAMES,
    AbstractSolver,
    Anderson,
    Broyden,
    FixedPointIteration,
    check_stop_mode,
    make_solver,
    solver_name,
)
from deq_flow_jax.solvers.iteration import IterationState


def _loaded_after(module: str) -> list:
    code = (f"import sys, json; import {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('deq_flow_jax'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_solvers_load_no_adjoint_and_adjoints_no_equilibrium():
    below = _loaded_after("deq_flow_jax.solvers")
    assert "deq_flow_jax.solvers.anderson" in below            # the check sees real imports
    assert not [m for m in below if m.startswith(("deq_flow_jax.adjoints", "deq_flow_jax.equilibrium"))], below
    middle = _loaded_after("deq_flow_jax.adjoints")
    assert "deq_flow_jax.adjoints.ift" in middle
    assert not [m for m in middle if m.startswith("deq_flow_jax.equilibrium")], middle


def test_fixed_point_stays_importable_from_solvers():
    from deq_flow_jax import solvers
    from deq_flow_jax.equilibrium import Solution
    assert solvers.fixed_point is fixed_point and solvers.Solution is Solution
    with pytest.raises(AttributeError, match="no attribute"):
        solvers.not_a_solver   # noqa: B018


@pytest.mark.parametrize("name,cls", [("anderson", Anderson), ("Broyden", Broyden),
                                      ("naive", FixedPointIteration),
                                      ("naive_solver", FixedPointIteration),
                                      ("iteration", FixedPointIteration)])
def test_registry_resolves_aliases(name, cls):
    assert type(make_solver(name)) is cls
    assert solver_name(name) in SOLVER_NAMES


def test_registry_and_stop_mode_errors_name_the_choices():
    with pytest.raises(ValueError, match="anderson, broyden, naive"):
        make_solver("newton")
    with pytest.raises(ValueError, match="DEQConfig.f_stop_mode must be 'abs' or 'rel'"):
        from deq_flow_jax.model import DEQConfig
        DEQConfig(f_stop_mode="max")
    with pytest.raises(ValueError, match="unknown solver 'newton'"):
        from deq_flow_jax.model import DEQConfig
        DEQConfig(b_solver="newton")
    assert check_stop_mode("rel") == "rel"


def test_solver_settings_canonicalise_the_name():
    from deq_flow_jax.evaluate.estimator import SolverSettings
    assert SolverSettings(solver="iteration").solver == "naive"
    with pytest.raises(ValueError, match="stop_mode"):
        SolverSettings(stop_mode="max")
    assert SolverSettings(tol=0.0).tol == 0.0        # as fixed_point and DEQConfig: full budget
    with pytest.raises(ValueError, match="tol must be >= 0"):
        SolverSettings(tol=-1.0)


def test_contract_is_a_type():
    """A duck-typed object is refused; a subclass of the abstract classes is accepted."""
    class Duck:
        def init(self, z0, fn, max_steps): ...
        def propose(self, state): ...
        def update(self, state, k, x, fx): ...
    z0 = jnp.zeros((2, 3))
    with pytest.raises(TypeError, match="not an AbstractSolver"):
        fixed_point(lambda z, a: 0.5 * z + a, z0, jnp.ones((2, 3)), solver=Duck())
    with pytest.raises(TypeError, match="not an AbstractAdjoint"):
        fixed_point(lambda z, a: 0.5 * z + a, z0, jnp.ones((2, 3)), adjoint=object())
    with pytest.raises(TypeError, match="abstract"):
        class Half(AbstractSolver):
            def init(self, z0, fn, max_steps):
                return z0
        Half()

    @dataclasses.dataclass(frozen=True)
    class Halving(AbstractSolver):        # x <- (x + f(x)) / 2, written against the contract
        def init(self, z0, fn, max_steps):
            return IterationState(x=z0)

        def propose(self, state):
            return state.x

        def update(self, state, k, x, fx):
            return IterationState(x=0.5 * (x + fx)), fx

    @dataclasses.dataclass(frozen=True)
    class Identity(AbstractAdjoint):      # no `probe` argument needed
        def apply(self, fn, z_star, args):
            return z_star

    a = jnp.asarray([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    sol = fixed_point(lambda z, b: 0.5 * z + b, z0, a, solver=Halving(), max_steps=100, tol=1e-6,
                      adjoint=Identity(), bwd_probe=backward_probe())
    np.testing.assert_allclose(np.asarray(sol.value), 2.0 * np.asarray(a), atol=1e-5)
    assert isinstance(Phantom(), AbstractAdjoint) and isinstance(NoGrad(), AbstractAdjoint)
