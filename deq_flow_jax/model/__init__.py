"""The DEQ-Flow model (contract 2 of docs/DESIGN.md).

    from deq_flow_jax.model import ModelConfig, DEQConfig, init_model, model_forward, estimate_flow
"""
from deq_flow_jax.model.config import DEQConfig, ModelConfig
from deq_flow_jax.model.deq_flow import DEQFunc, FArgs, coords_grid, decode, encode
from deq_flow_jax.model.forward import ModelOutput, init_model, make_solver, model_forward
from deq_flow_jax.model.inference import FlowResult, estimate_flow
from deq_flow_jax.model.padding import compute_padding, pad, unpad

__all__ = ["ModelConfig", "DEQConfig", "init_model", "model_forward", "ModelOutput",
           "estimate_flow", "FlowResult", "DEQFunc", "FArgs", "encode", "decode",
           "coords_grid", "make_solver", "compute_padding", "pad", "unpad"]
