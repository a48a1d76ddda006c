"""Numerical parity with the official PyTorch DEQ-Flow (golden fixtures, see fixtures/README.md).

Official parameters are regenerated from the fixtures' seed rule, converted with
`load_official` (which so sees every official key) and run through our model.
"""
import jax.numpy as jnp
import numpy as np
import pytest
from model_golden import load_golden

from deq_flow_jax.convert import load_official
from deq_flow_jax.model import ModelConfig, estimate_flow
from deq_flow_jax.model import deq_flow as D
from deq_flow_jax.model.corr import lookup

FEATURE_TOL = 1e-3     # encoder outputs and f
FLOW_TOL = 1e-3        # px (issue target)


def _maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _check_variant(tag):
    golden, state_dict = load_golden(tag)
    cfg = ModelConfig.variant(tag)
    variables = load_official(state_dict, cfg)
    im1 = golden["image1"][None].astype(np.float32)
    im2 = golden["image2"][None].astype(np.float32)

    enc, _ = D.encode(variables, cfg, im1, im2)
    assert _maxdiff(enc.fmap1[..., :16], golden["fmap1"]) < FEATURE_TOL
    assert _maxdiff(enc.fmap2[..., :16], golden["fmap2"]) < FEATURE_TOL
    assert _maxdiff(enc.inp[..., :16], golden["inp"]) < FEATURE_TOL
    if cfg.gma:
        assert _maxdiff(enc.attn[:, ::8], golden["attn"]) < 1e-5

    args = D.f_args(variables, cfg, enc)
    corr = lookup(enc.pyramid, args.coords0 + jnp.array([1.3, -0.6]), cfg.corr_radius)
    assert _maxdiff(corr[..., ::3], golden["corr"]) < FEATURE_TOL

    z0 = (jnp.zeros(args.inp.shape[:3] + (cfg.hidden_dim,)), args.coords0)
    hidden, coords = D.DEQFunc(cfg)(z0, args)
    assert _maxdiff(hidden[..., :16], golden["f1_hidden"]) < FEATURE_TOL
    assert _maxdiff(coords - args.coords0, golden["f1_flow"]) < FLOW_TOL

    for solver in ("naive", "anderson"):
        res = estimate_flow(variables, cfg, golden["image1"], golden["image2"], solver=solver,
                            max_steps=8, tol=1e-9)
        assert _maxdiff(res.flow_lowres, golden[f"{solver}_flow_lowres"]) < FLOW_TOL, solver
        assert _maxdiff(res.flow, golden[f"{solver}_flow"]) < FLOW_TOL, solver
        assert _maxdiff(res.cache[0][..., :16], golden[f"{solver}_hidden"]) < FEATURE_TOL
        assert np.abs(golden[f"{solver}_flow"]).max() > 1.0      # a non-trivial flow


def test_parity_B():
    _check_variant("B")


@pytest.mark.slow
def test_parity_H():
    _check_variant("H")


@pytest.mark.slow
def test_parity_GMA_B():
    _check_variant("GMA-B")
