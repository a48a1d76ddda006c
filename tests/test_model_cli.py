"""`deq-flow init` / `deq-flow convert` and model_io round trips."""
import json
import os

import jax
import numpy as np
import pytest

from deq_flow_jax.cli import main
from deq_flow_jax.model import ModelConfig
from deq_flow_jax.model_io import load_model, save_model
from model_golden import load_golden


def test_init_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["init", "--variant", "tiny", "--out", str(out), "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "variant tiny: 2,490,976 parameters" in text
    variables, cfg = load_model(str(out))
    assert cfg == ModelConfig.variant("tiny")
    assert json.load(open(out / "model_config.json"))["model"]["hidden_dim"] == 32
    again = tmp_path / "again"
    main(["init", "--variant", "tiny", "--out", str(again), "--seed", "3"])
    v2, _ = load_model(str(again))
    jax.tree.map(np.testing.assert_array_equal, variables, v2)      # seeded
    # save_model replaces an existing model atomically (no leftovers).
    save_model(str(out), v2, cfg)
    assert sorted(os.listdir(tmp_path)) == ["again", "tiny"]


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_config.json not found"):
        load_model(str(tmp_path))


def test_convert_official_pth(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    _, sd = load_golden("B")
    pth = tmp_path / "official_B.pth"
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, pth)
    assert main(["convert", str(pth), str(tmp_path / "B"), "--variant", "B"]) == 0
    assert "variant B: 5,242,816 parameters" in capsys.readouterr().out
    variables, cfg = load_model(str(tmp_path / "B"))
    np.testing.assert_allclose(
        variables["params"]["update_block"]["flow_head"]["conv2"]["weight_v"],
        np.transpose(sd["module.update_block.flow_head.conv2.weight_v"], (2, 3, 1, 0)))
    # The wrong variant fails with one clear message and exit code 2.
    assert main(["convert", str(pth), str(tmp_path / "H"), "--variant", "H"]) == 2
    err = capsys.readouterr().err
    assert "looks like variant 'B'" in err and not (tmp_path / "H").exists()
