"""End to end on the synthetic data: train_and_evaluate learns, logs, checkpoints, resumes."""
import json
import os

import chex
import jax
import numpy as np
import pytest

from training_helpers import tiny_config

NUM_STEPS = 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from deq_flow_jax.train import train_and_evaluate
    root = tmp_path_factory.mktemp("train")
    cfg = tiny_config(root / "data", num_steps=NUM_STEPS, lr=1e-3, log_every=5,
                      eval_every=NUM_STEPS, checkpoint_every=10)
    workdir = root / "run"
    metrics = train_and_evaluate(cfg, str(workdir))
    return cfg, workdir, metrics


def test_short_run_is_finite_and_fits(trained):
    _, workdir, m = trained
    assert np.isfinite(m["epe"]) and m["zero_epe"] > 1.0
    lines = [json.loads(l) for l in open(workdir / "train.jsonl") if '"train"' in l]
    assert all(np.isfinite(l["loss"]) and l["skipped"] == 0 for l in lines), lines
    assert lines[0]["lr"] < lines[1]["lr"]            # one-cycle warm-up (pct_start 0.05 of 120)


def test_workdir_logs_and_checkpoints(trained):
    cfg, workdir, m = trained
    assert json.load(open(workdir / "config.json"))["num_steps"] == NUM_STEPS
    lines = [json.loads(l) for l in open(workdir / "train.jsonl")]
    train = [l for l in lines if l["kind"] == "train"]
    val = [l for l in lines if l["kind"] == "val"]
    assert [l["step"] for l in train] == list(range(5, NUM_STEPS + 1, 5))
    for key in ("loss", "epe", "lr", "grad_norm", "f_nstep", "f_abs", "f_rel", "b_nstep", "b_abs",
                "b_rel", "skipped", "steps_per_s"):
        assert all(key in l for l in train), key
    assert train[0]["skipped"] == 0 and train[0]["b_nstep"] == 0.0   # phantom: no backward solve
    assert [l["step"] for l in val] == [NUM_STEPS]
    for key in ("epe", "1px", "3px", "5px", "zero_epe", "f_nstep", "f_rel", "f_abs"):
        assert key in val[0]
    assert any(f.startswith("events") for f in os.listdir(workdir / "tb"))
    steps = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
    assert steps == [NUM_STEPS], steps          # step 10 had no validation: not the best, not latest


def test_load_model_and_resume_finished_run(trained, capsys):
    from deq_flow_jax.train import train_and_evaluate
    from deq_flow_jax.train.checkpoint import load_model_from_workdir
    cfg, workdir, m = trained
    variables, mcfg = load_model_from_workdir(str(workdir), "best")
    assert mcfg.name == "tiny" and "batch_stats" in variables
    latest, _ = load_model_from_workdir(str(workdir), "latest")
    chex.assert_trees_all_equal(variables, latest)
    again = train_and_evaluate(cfg, str(workdir))          # nothing left to train
    assert f"resumed from step {NUM_STEPS}" in capsys.readouterr().out
    np.testing.assert_allclose(again["epe"], m["epe"], rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="checkpoints"):
        load_model_from_workdir(str(workdir / "nope"))
