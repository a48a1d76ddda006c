"""`deq-flow init` / `deq-flow convert`: model directories written safely, model_io round trips."""
import json
import os

import jax
import numpy as np
import pytest
from checkpoint_helpers import tree_hash
from model_golden import load_golden

from deq_flow_jax import checkpoints
from deq_flow_jax.cli import main
from deq_flow_jax.model import ModelConfig


def test_init_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["init", "--variant", "tiny", "--out", str(out), "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "variant tiny: 2,490,976 parameters" in text
    variables, cfg = checkpoints.load(str(out))[:2]
    assert cfg == ModelConfig.variant("tiny")
    assert json.loads((out / "model_config.json").read_text())["model"]["hidden_dim"] == 32
    again = tmp_path / "again"
    main(["init", "--variant", "tiny", "--out", str(again), "--seed", "3"])
    v2, _ = checkpoints.load(str(again))[:2]
    jax.tree.map(np.testing.assert_array_equal, variables, v2)      # seeded
    # checkpoints.save replaces an existing model only when asked, atomically (no leftovers).
    with pytest.raises(ValueError, match="pass --overwrite"):
        checkpoints.save(str(out), v2, cfg)
    checkpoints.save(str(out), v2, cfg, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["again", "tiny"]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


def test_init_never_replaces_what_it_did_not_write(tmp_path, capsys):
    user = tmp_path / "user"
    user.mkdir()
    (user / "photo.png").write_bytes(b"not ours")
    (tmp_path / "file.txt").write_text("mine")
    before = tree_hash(tmp_path)
    for out in (user, tmp_path / "file.txt"):
        for extra in ([], ["--overwrite"]):
            assert main(["init", "--variant", "tiny", "--out", str(out)] + extra) == 2
            _one_line_error(capsys, "deq-flow init:", str(out), "refusing to replace")
    assert tree_hash(tmp_path) == before


def test_init_overwrite_replaces_our_model_and_keeps_dir_old(tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["init", "--variant", "tiny", "--out", str(out), "--seed", "1"]) == 0
    seed1, _ = checkpoints.load(str(out))[:2]
    old = tmp_path / "model.old"
    old.mkdir()
    (old / "keep.txt").write_text("precious")
    before, old_before = tree_hash(tmp_path), tree_hash(old)
    assert main(["init", "--variant", "tiny", "--out", str(out), "--seed", "2"]) == 2
    _one_line_error(capsys, str(out), "--overwrite")
    assert tree_hash(tmp_path) == before
    assert main(["init", "--variant", "tiny", "--out", str(out), "--seed", "2",
                 "--overwrite"]) == 0
    assert tree_hash(old) == old_before                              # untouched
    assert sorted(os.listdir(tmp_path)) == ["model", "model.old"]    # no temp leftovers
    seed2, _ = checkpoints.load(str(out))[:2]
    kernel = lambda v: np.asarray(v["params"]["fnet"]["conv1"]["kernel"])
    assert not np.array_equal(kernel(seed1), kernel(seed2))          # replaced


def test_convert_of_a_folder_or_onto_a_file(tmp_path, capsys):
    folder = tmp_path / "some_model"
    assert main(["init", "--variant", "tiny", "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main(["convert", str(folder), str(tmp_path / "out"), "--variant", "tiny"]) == 2
    _one_line_error(capsys, str(folder), "is a directory, not an official .pth")
    (tmp_path / "taken").write_text("mine")
    assert main(["convert", str(tmp_path / "x.pth"), str(tmp_path / "taken")]) == 2
    _one_line_error(capsys, str(tmp_path / "taken"), "not a directory")
    assert (tmp_path / "taken").read_text() == "mine" and not (tmp_path / "out").exists()


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a model directory"):
        checkpoints.load(str(tmp_path))


def test_convert_official_pth(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    _, sd = load_golden("B")
    pth = tmp_path / "official_B.pth"
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, pth)
    assert main(["convert", str(pth), str(tmp_path / "B"), "--variant", "B"]) == 0
    assert "variant B: 5,242,816 parameters" in capsys.readouterr().out
    variables, _ = checkpoints.load(str(tmp_path / "B"))[:2]
    np.testing.assert_allclose(
        variables["params"]["update_block"]["flow_head"]["conv2"]["weight_v"],
        np.transpose(sd["module.update_block.flow_head.conv2.weight_v"], (2, 3, 1, 0)))
    # The wrong variant fails with one clear message and exit code 2.
    assert main(["convert", str(pth), str(tmp_path / "H"), "--variant", "H"]) == 2
    err = capsys.readouterr().err
    assert "looks like variant 'B'" in err and not (tmp_path / "H").exists()
