"""Helpers for the official-parity tests: the deterministic weight rule of the fixtures.

See tests/fixtures/README.md for how the golden `.npz` files were produced.
"""
from __future__ import annotations

import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def value_rule(key: str, shape: tuple, index: int, seed: int) -> np.ndarray:
    """The official parameter / buffer `key` (index in sorted key order) as the fixture set it."""
    rng = np.random.default_rng(seed + index)
    x = rng.standard_normal(shape)
    if key.endswith("running_var"):
        return (1.0 + 0.2 * np.abs(x)).astype(np.float32)
    if key.endswith("weight_g"):
        return (1.0 + 0.1 * x).astype(np.float32)
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return (x / np.sqrt(fan_in)).astype(np.float32)
    if key.endswith("gamma"):
        return (0.5 * x).astype(np.float32)
    if key.endswith(".weight") and len(shape) == 1:
        return (1.0 + 0.1 * x).astype(np.float32)
    return (0.1 * x).astype(np.float32)


def load_golden(tag: str):
    """(fixture dict, official state_dict with `module.` prefixes) for e.g. tag 'B'."""
    g = dict(np.load(os.path.join(FIXTURES, f"official_{tag}.npz")))
    seed = int(g["seed"])
    sd = {}
    for i, (k, s) in enumerate(zip(g["keys"], g["shapes"])):
        shape = tuple(int(v) for v in str(s).split(",")) if str(s) else ()
        sd["module." + str(k)] = value_rule(str(k), shape, i, seed)
    return g, sd
