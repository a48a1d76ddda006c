"""The safety rules with the real model: a tiny model written by `deq-flow init`, 16x24 frames.

Weights that hold NaN (what corrupted weights can look like) make `infer` fail with one
line naming the pair, before any flow file is written; `eval` and `export` refuse to
overwrite what they did not write, with the real checkpoint loaded through the one
`--checkpoint` path.
"""
import os

import jax
import numpy as np
import pytest
from cli_safety_helpers import assert_one_line_error, run, tree_state, write_frames

SOLVER = ["--solver", "naive", "--max-steps", "4", "--no-progress"]
pytestmark = pytest.mark.slow   # about 35 s: init, save, compile; test_cli_safety covers the paths fast


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from deq_flow_jax import checkpoints, cli

    root = tmp_path_factory.mktemp("models")
    good = root / "tiny"
    assert cli.main(["init", "--variant", "tiny", "--out", str(good), "--seed", "1"]) == 0
    variables, cfg = checkpoints.load(str(good))[:2]
    poisoned = jax.tree.map(lambda x: np.full(x.shape, np.nan, np.float32), variables)
    checkpoints.save(str(root / "nan"), poisoned, cfg)
    return good, root / "nan"


def test_nan_weights_stop_infer_naming_the_pair(tmp_path, capsys, models):
    _, nan_model = models
    frames = write_frames(tmp_path / "frames", 2)
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "infer", tmp_path / "frames", "--checkpoint", nan_model,
                     "--out", tmp_path / "out", *SOLVER)
    assert_one_line_error(rc, err, "infer", f"{frames[0]} -> {frames[1]}", "non-finite")
    assert tree_state(tmp_path) == before


def test_real_checkpoint_outputs_refuse_foreign_files(tmp_path, capsys, models):
    good, _ = models
    foreign = tmp_path / "model.jaxexp"
    foreign.write_bytes(b"not ours")
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "export", "--checkpoint", good, "--out", foreign, "--overwrite",
                     "--height", 16, "--width", 24)
    assert_one_line_error(rc, err, "export", str(foreign), "not written by deq-flow")
    rc, _, err = run(capsys, "export", "--checkpoint", good, "--out", good / "inside.jaxexp",
                     "--height", 16, "--width", 24)
    assert_one_line_error(rc, err, "export", "--checkpoint", "inside the input")
    assert tree_state(tmp_path) == before
    assert not os.path.exists(good / "inside.jaxexp")
