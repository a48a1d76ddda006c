"""deq-flow-jax: Deep Equilibrium Optical Flow Estimation in JAX/Flax.

The public API is re-exported here lazily (importing the package stays cheap):

    from deq_flow_jax import fixed_point, Anderson, IFT, Phantom
    from deq_flow_jax import ModelConfig, DEQConfig, init_model, estimate_flow
    from deq_flow_jax import load_pretrained          # the shipped model: (variables, cfg)
    from deq_flow_jax import refine_flow              # the shipped model's post-processing
    from deq_flow_jax import checkpoints              # checkpoints.load(path) / save(...)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # generic fixed-point solvers and gradient rules (flow-agnostic)
    "fixed_point": "deq_flow_jax.equilibrium",
    "Solution": "deq_flow_jax.equilibrium",
    "SolverStats": "deq_flow_jax.solvers",
    "Anderson": "deq_flow_jax.solvers",
    "Broyden": "deq_flow_jax.solvers",
    "FixedPointIteration": "deq_flow_jax.solvers",
    "IFT": "deq_flow_jax.adjoints",
    "Phantom": "deq_flow_jax.adjoints",
    "NoGrad": "deq_flow_jax.adjoints",
    "jacobian_frobenius_sq": "deq_flow_jax.equilibrium",
    "spectral_radius": "deq_flow_jax.equilibrium",
    "make_solver": "deq_flow_jax.solvers",
    # the flow model
    "ModelConfig": "deq_flow_jax.model",
    "DEQConfig": "deq_flow_jax.model",
    "init_model": "deq_flow_jax.model",
    "estimate_flow": "deq_flow_jax.model",
    "FlowResult": "deq_flow_jax.model",
    "load_official": "deq_flow_jax.convert",
    # post-processing: variational refinement of a flow on its frames (numpy + OpenCV)
    "refine_flow": "deq_flow_jax.evaluate.refine",
    # checkpoints: `deq_flow_jax.checkpoints.load(path=None, which="best")` is the one loader
    "load_pretrained": "deq_flow_jax.pretrained",
    # file formats, metrics, visualisation
    "read_flo": "deq_flow_jax.io",
    "write_flo": "deq_flow_jax.io",
    "read_pfm": "deq_flow_jax.io",
    "read_kitti_flow": "deq_flow_jax.io",
    "write_kitti_flow": "deq_flow_jax.io",
    "read_image": "deq_flow_jax.io",
    "flow_to_color": "deq_flow_jax.evaluate.flow_colors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'deq_flow_jax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
