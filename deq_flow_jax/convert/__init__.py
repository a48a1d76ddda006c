"""Official checkpoint import (`load_official`)."""
from deq_flow_jax.convert.official import CheckpointMismatchError, load_official, official_key, read_state_dict

__all__ = ["load_official", "CheckpointMismatchError", "official_key", "read_state_dict"]
