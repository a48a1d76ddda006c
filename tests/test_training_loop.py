"""End to end on the synthetic data: train_and_evaluate learns, logs, checkpoints, resumes.

The run keeps an EMA of its weights (ema_decay 0.9), so the metrics-core check below also
shows that validation, `checkpoints.load` and `deq-flow eval` all read the averaged weights."""
import json
import os

import chex
import jax
import numpy as np
import pytest
from training_helpers import benchmark_module, tiny_config

NUM_STEPS = 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from deq_flow_jax.train import train_and_evaluate
    root = tmp_path_factory.mktemp("train")
    cfg = tiny_config(root / "data", num_steps=NUM_STEPS, lr=1e-3, log_every=5,
                      eval_every=NUM_STEPS, checkpoint_every=10,
                      ema_decay=0.9, **{"data.extra_val": "photo_pairs:validation:2"})
    cfg.data.layered = {"height": 64, "width": 96}          # the photo pairs, rendered small
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
    extra = [l for l in lines if l["kind"] == "val/photo_pairs"]    # config.data.extra_val
    assert [(l["step"], l["n_pairs"]) for l in extra] == [(NUM_STEPS, 2)]
    assert np.isfinite(extra[0]["epe"]) and extra[0]["zero_epe"] != val[0]["zero_epe"]
    for key in ("epe", "1px", "3px", "5px", "fl_all", "zero_epe", "f_nstep", "f_rel", "f_abs"):
        assert key in val[0]
    assert any(f.startswith("events") for f in os.listdir(workdir / "tb"))
    steps = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
    assert steps == [NUM_STEPS], steps          # step 10 had no validation: not the best, not latest


def test_load_model_and_resume_finished_run(trained, capsys):
    from deq_flow_jax import checkpoints
    from deq_flow_jax.train import train_and_evaluate
    cfg, workdir, m = trained
    variables, mcfg = checkpoints.load(str(workdir), "best")[:2]
    assert mcfg.name == "tiny" and "batch_stats" in variables
    latest, _ = checkpoints.load(str(workdir), "latest")[:2]
    chex.assert_trees_all_equal(variables, latest)
    # The loaded weights are the run's EMA (config.ema_decay), not its last raw weights.
    from deq_flow_jax.train import checkpoint as ck
    from deq_flow_jax.train.optim import make_optimizer
    from deq_flow_jax.train.parallel import to_host
    from deq_flow_jax.train.state import create_train_state
    target = create_train_state(variables, make_optimizer(cfg)[0], 0, ema=True)
    raw = to_host(ck.restore(ck.make_manager(str(workdir)), NUM_STEPS, target)[0])
    chex.assert_trees_all_equal(variables["params"], raw.ema_params)
    diff = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), raw.ema_params, raw.params)
    assert max(jax.tree.leaves(diff)) > 1e-6
    again = train_and_evaluate(cfg, str(workdir))          # nothing left to train
    assert f"resumed from step {NUM_STEPS}" in capsys.readouterr().out
    np.testing.assert_allclose(again["epe"], m["epe"], rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="checkpoints"):
        checkpoints.load(str(workdir / "nope"))


def test_one_metrics_core_log_eval_demo_benchmark_agree(trained, tmp_path, capsys):
    """The same weights on the same pairs: the training log's validation, `deq-flow eval`, the
    demo's result and the reuse benchmark report the same EPE / n-px / Fl-all (1e-5)."""
    from deq_flow_jax import checkpoints, cli
    from deq_flow_jax.cli.demo import _evaluate
    from deq_flow_jax.data import make_eval_source
    from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings
    from deq_flow_jax.train.config import deq_config

    cfg, workdir, final = trained
    keys = ("epe", "1px", "3px", "5px", "fl_all")
    dcfg, syn = deq_config(cfg), cfg.data.synthetic
    log = [json.loads(line) for line in open(workdir / "train.jsonl") if '"val"' in line][-1]
    assert log["n_pairs"] == syn.num_val == cfg.data.val_max_examples
    assert 0.0 <= log["1px"] <= log["3px"] <= log["5px"] <= 100.0       # percent, not a fraction

    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--checkpoint", str(workdir), "--dataset", "synthetic",
                     "--data-dir", cfg.data.data_dir, "--synthetic-size", str(syn.height), str(syn.width),
                     "--synthetic-num-train", str(syn.num_train), "--synthetic-num-val", str(syn.num_val),
                     "--solver", dcfg.f_solver, "--max-steps", str(dcfg.eval_max_steps),
                     "--tol", str(dcfg.f_tol), "--stop-mode", dcfg.f_stop_mode,
                     "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    evaluated = json.loads(out.read_text())["passes"]["synthetic"]["summary"]

    demo = _evaluate(str(workdir), cfg, 0)

    variables, mcfg = checkpoints.load(str(workdir), which="best")[:2]
    settings = SolverSettings(dcfg.f_solver, dcfg.eval_max_steps, dcfg.f_tol, dcfg.f_stop_mode)
    src = make_eval_source("synthetic", "validation", data_dir=cfg.data.data_dir, **dict(syn))
    bench = benchmark_module("reuse").run_mode(FlowEstimator(variables, mcfg, settings),
                                                [src[i] for i in range(len(src))], "none")
    for k in keys:
        np.testing.assert_allclose(evaluated[k], log[k], atol=1e-5, err_msg=f"eval vs log: {k}")
        np.testing.assert_allclose(demo[k], log[k], atol=1e-5, err_msg=f"demo vs log: {k}")
        np.testing.assert_allclose(final[k], log[k], atol=1e-5, err_msg=f"returned vs log: {k}")
    for k in ("epe", "1px"):
        np.testing.assert_allclose(bench[k], log[k], atol=1e-5, err_msg=f"benchmark vs log: {k}")
    np.testing.assert_allclose(demo["zero_epe"], log["zero_epe"], atol=1e-5)
