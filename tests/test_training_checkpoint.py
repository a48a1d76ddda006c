"""Checkpoints: best-by-EPE + latest kept, exact restore, iterator state, JSONL truncation."""
import json
import os

import chex
import jax
import numpy as np
import pytest

from deq_flow_jax.train import checkpoint as ck
from deq_flow_jax.train.logging import MetricLogger, truncate_jsonl
from deq_flow_jax.train.optim import adamw_without_lr
from deq_flow_jax.train.parallel import make_mesh, replicate, to_host
from deq_flow_jax.train.state import create_train_state


def _state(seed):
    r = np.random.RandomState(seed)
    variables = {"params": {"w": r.randn(3, 4).astype(np.float32), "b": np.zeros(4, np.float32)},
                 "batch_stats": {"mean": r.randn(4).astype(np.float32)}}
    return create_train_state(variables, adamw_without_lr(1.0, 1e-4), seed)


def test_keeps_latest_and_best_and_restores_exactly(tmp_path):
    mesh = make_mesh(jax.devices()[:2])
    mgr = ck.make_manager(str(tmp_path))
    states = {}
    for step, epe in [(1, 5.0), (2, 3.0), (3, None), (4, 4.0), (5, None)]:
        s = replicate(_state(step), mesh)
        s = s.replace(step=jax.numpy.asarray(step, jax.numpy.int32))
        states[step] = to_host(s)
        data_state = b"\x00grain-bytes" if step % 2 else {"pos": step}
        ck.save(mgr, step, s, data_state, {"model_config": {"variant": "tiny"}, "k": step},
                metrics=None if epe is None else {"epe": epe})
    assert sorted(mgr.all_steps()) == [2, 5], mgr.all_steps()
    assert ck.best_step(mgr) == 2
    target = replicate(_state(0), mesh)
    got, data_state, extra = ck.restore(mgr, 5, target)
    assert data_state == b"\x00grain-bytes" and extra["k"] == 5
    chex.assert_trees_all_equal(to_host(got), states[5])
    assert isinstance(got.opt_state, tuple)                  # optax structure, not lists
    got2, data_state2, _ = ck.restore(ck.make_manager(str(tmp_path)), 2, target)
    assert data_state2 == {"pos": 2}
    chex.assert_trees_all_equal(to_host(got2.params), states[2].params)
    # Every finished step lists its files' checksums; a changed byte stops the resume.
    metrics_file = tmp_path / "checkpoints" / "2" / "metrics" / "metrics"
    assert "metrics/metrics" in (tmp_path / "checkpoints" / "2" / "SHA256SUMS").read_text()
    metrics_file.write_bytes(metrics_file.read_bytes() + b" ")
    with pytest.raises(ValueError, match="metrics/metrics: checksum mismatch"):
        ck.restore(ck.make_manager(str(tmp_path)), 2, target)


def test_jsonl_logger_and_truncation(tmp_path):
    log = MetricLogger(str(tmp_path))
    for step in (10, 20, 30):
        log.write(step, "train", {"loss": np.float32(step / 10), "nan": float("nan")})
    log.write(20, "val", {"epe": 1.5})
    log.close()
    path = os.path.join(tmp_path, "train.jsonl")
    with open(path, "a") as f:
        f.write('{"step": 40, "kind": "tr')                  # a line cut by SIGKILL
    truncate_jsonl(path, 20)
    lines = [json.loads(l) for l in open(path)]
    assert [(l["step"], l["kind"]) for l in lines] == [(10, "train"), (20, "train"), (20, "val")]
    assert lines[0]["loss"] == 1.0 and lines[0]["nan"] is None
    assert any(f.startswith("events") for f in os.listdir(tmp_path / "tb"))


def test_resume_adds_or_drops_the_ema(tmp_path):
    """A checkpoint without EMA (older runs, ema_decay 0) resumes into a run that keeps one
    (the EMA starts at the restored weights) and vice versa; the workdir loader reads the EMA."""
    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import ModelConfig
    mesh = make_mesh(jax.devices()[:1])
    extra = {"model_config": ModelConfig.variant("tiny").to_dict()}
    mgr = ck.make_manager(str(tmp_path / "plain"))
    plain = replicate(_state(1), mesh)
    ck.save(mgr, 1, plain, {"pos": 1}, extra)
    with_ema = replicate(_state_ema(2), mesh)
    got, _, _ = ck.restore(mgr, 1, with_ema)
    chex.assert_trees_all_equal(to_host(got.ema_params), to_host(plain.params))
    chex.assert_trees_all_equal(to_host(got.params), to_host(plain.params))
    # A run with an EMA, resumed without one: the average is dropped.
    mgr2 = ck.make_manager(str(tmp_path / "ema"))
    s = with_ema.replace(ema_params=jax.tree.map(lambda p: p + 1.0, with_ema.params))
    ck.save(mgr2, 3, s, {"pos": 3}, extra)
    got, _, _ = ck.restore(mgr2, 3, replicate(_state(0), mesh))
    assert got.ema_params == {}
    chex.assert_trees_all_equal(to_host(got.params), to_host(s.params))
    got, _, _ = ck.restore(mgr2, 3, replicate(_state_ema(0), mesh))
    chex.assert_trees_all_equal(to_host(got.ema_params), to_host(s.ema_params))
    # Reading the model out of the workdir gives the averaged weights.
    mgr2.close()
    variables = checkpoints._read_workdir(str(tmp_path / "ema"), "latest")[0]
    chex.assert_trees_all_equal(variables["params"], to_host(s.ema_params))


def _state_ema(seed):
    r = np.random.RandomState(seed)
    variables = {"params": {"w": r.randn(3, 4).astype(np.float32), "b": np.zeros(4, np.float32)},
                 "batch_stats": {"mean": r.randn(4).astype(np.float32)}}
    return create_train_state(variables, adamw_without_lr(1.0, 1e-4), seed, ema=True)
