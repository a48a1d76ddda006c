"""`deq-flow prepare`."""
import numpy as np

from deq_flow_jax import cli
from deq_flow_jax import io as fio
from deq_flow_jax.data import make_eval_source


def test_prepare_synthetic(tmp_path, capsys):
    args = ["prepare", "synthetic", "--data-dir", str(tmp_path), "--num-train", "2", "--num-val", "1",
            "--height", "32", "--width", "48", "--seed", "4"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "synthetic_flow/pairs_32x48_n2-1_f2_s4: train=2, validation=1" in out
    src = make_eval_source("synthetic", "train", data_dir=tmp_path, height=32, width=48, num_train=2,
                           num_val=1, seed=4)
    assert src[1]["image1"].shape == (32, 48, 3)
    assert cli.main(["prepare", "synthetic", "--data-dir", str(tmp_path), "--height", "8"]) == 2
    assert "--height: must be an integer >= 16; got 8" in capsys.readouterr().err


def test_prepare_kitti_and_errors(tmp_path, capsys):
    root = tmp_path / "KITTI" / "training"
    for i in range(2):
        fio.write_image(root / "image_2" / f"{i:06d}_10.png", np.zeros((8, 12, 3), np.uint8))
        fio.write_image(root / "image_2" / f"{i:06d}_11.png", np.zeros((8, 12, 3), np.uint8))
    assert cli.main(["prepare", "kitti", "--manual-dir", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 2
    assert "expected 2 flow files" in capsys.readouterr().err
    for i in range(2):
        fio.write_kitti_flow(root / "flow_occ" / f"{i:06d}_10.png", np.ones((8, 12, 2)))
    assert cli.main(["prepare", "kitti", "--manual-dir", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 0
    assert "kitti_flow2015/-: train=2" in capsys.readouterr().out
    assert cli.main(["prepare", "sintel", "--data-dir", str(tmp_path)]) == 2
    assert "needs --manual-dir" in capsys.readouterr().err
