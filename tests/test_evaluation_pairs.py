"""`deq-flow eval --pairs LIST` (your own pairs with ground truth) and `--baseline NAME`
(classical methods on any protocol): the list's reading and checks, the baselines' flow,
the results against metrics computed here, and one-line errors that leave nothing behind.
The model's path through `--pairs` is in test_evaluation_model.py (it shares that module's
compiled model).
"""
import json
import os

import cv2
import numpy as np
import pytest
from cli_safety_helpers import assert_one_line_error, run, tree_state, use_fake_model

from deq_flow_jax import io
from deq_flow_jax.data.pair_list import PairListError, PairListSource
from deq_flow_jax.evaluate.baselines import BASELINES, BaselineEstimator, baseline_flow

H, W = 48, 64


def textured(seed=0, size=(H + 40, W + 40)):
    """A smooth random texture (H', W', 3) float32, 0..255."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, size + (3,)).astype(np.float32), (0, 0), 1.5)
    return (big - big.min()) / (big.max() - big.min()) * 255


def shifted_pair(dx, dy, seed=0):
    """Frames 1, 2 (H, W, 3) uint8 where frame 2 shows frame 1's content moved by (dx, dy):
    flow = (dx, dy) everywhere."""
    big = textured(seed)
    crop = lambda ox, oy: np.round(cv2.warpAffine(  # noqa: E731
        big, np.float32([[1, 0, -ox], [0, 1, -oy]]), (W, H), flags=cv2.INTER_LINEAR)).astype(np.uint8)
    return crop(20, 20), crop(20 - dx, 20 - dy)


def write_list(folder, lines, name="list.txt"):
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def pairs(tmp_path):
    """Three pairs in three ground-truth formats (.flo with Middlebury's unknown 1e10, .pfm,
    KITTI PNG with a sparse valid mask), one path with a space; -> (list path, [(frame 1,
    frame 2, flow, known)])."""
    data = tmp_path / "my data"
    out = []
    specs = [(2.0, 1.0, "a.flo"), (-3.0, 0.5, "b.pfm"), (1.5, -2.0, "c flow.png")]
    for k, (dx, dy, gt_name) in enumerate(specs):
        im1, im2 = shifted_pair(dx, dy, seed=k)
        io.write_image(data / f"p{k}_1.png", im1)
        io.write_image(data / f"p{k}_2.png", im2)
        flow = np.zeros((H, W, 2), np.float32)
        flow[...] = (dx, dy)
        known = np.ones((H, W), bool)
        if gt_name.endswith(".flo"):
            known[:, :6] = False
            io.write_flo(data / gt_name, np.where(known[..., None], flow, 1e10).astype(np.float32))
        elif gt_name.endswith(".pfm"):
            io.write_pfm(data / gt_name, flow)
        else:
            known[::2] = False
            io.write_kitti_flow(data / gt_name, flow, known)
        out.append((im1, im2, flow, known))
    lines = ["# my pairs", "", "'my data/p0_1.png' 'my data/p0_2.png' 'my data/a.flo'",
             f"  '{data / 'p1_1.png'}'  my\\ data/p1_2.png 'my data/b.pfm'",     # absolute; escaped
             "'my data/p2_1.png' 'my data/p2_2.png' 'my data/c flow.png'"]
    return write_list(tmp_path, lines), out


def masked_epe(flow, gt, known):
    return float(np.linalg.norm(flow - gt, axis=-1)[known].mean())


# ----------------------------------------------------------------- the list

def test_pair_list_reads_each_format_and_marks_unknown_flow(pairs):
    path, expected = pairs
    source = PairListSource(path)
    assert len(source) == 3
    for k, (im1, im2, flow, known) in enumerate(expected):
        item = source[k]
        np.testing.assert_array_equal(item["image1"], im1)
        np.testing.assert_array_equal(item["image2"], im2)
        np.testing.assert_array_equal(item["valid"] > 0, known)
        np.testing.assert_allclose(item["flow"][known], flow[known], atol=1 / 64)   # KITTI: 1/64 px
        assert np.all(item["flow"][~known] == 0)                  # 1e10 does not reach the metrics
        assert item["meta"]["scene"] == f"line {k + 3}" and item["meta"]["frame"] is None
    assert source[-1]["meta"]["files"][2] == "my data/c flow.png"
    with pytest.raises(IndexError):
        source[3]


@pytest.mark.parametrize("line, words", [
    ("a.png b.png", ["line 1", "three paths", "found 2"]),
    ("a.png b.png gt.txt", ["line 1", "gt.txt", ".flo / .pfm / .png"]),
    ("a.png missing.png gt.flo", ["line 1", "no such file", "missing.png"]),
    ("a.png 'b.png gt.flo", ["line 1", "quotation"]),
])
def test_pair_list_refuses_bad_lines_naming_list_and_line(tmp_path, line, words):
    for name in ("a.png", "b.png"):
        io.write_image(tmp_path / name, np.zeros((8, 8, 3), np.uint8))
    io.write_flo(tmp_path / "gt.flo", np.zeros((8, 8, 2), np.float32))
    path = write_list(tmp_path, [line])
    with pytest.raises(PairListError) as e:
        PairListSource(path)
    for w in [str(path)] + words:
        assert w in str(e.value), (w, str(e.value))


def test_pair_list_item_errors_name_the_line(tmp_path):
    io.write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    io.write_image(tmp_path / "big.png", np.zeros((8, 10, 3), np.uint8))
    io.write_flo(tmp_path / "wide.flo", np.zeros((8, 10, 2), np.float32))
    io.write_flo(tmp_path / "unknown.flo", np.full((8, 8, 2), 1e10, np.float32))
    (tmp_path / "bad.flo").write_bytes(b"PIEH\x00")
    with pytest.raises(PairListError, match="line 2: the frames differ in size: 8x8 and 10x8"):
        PairListSource(write_list(tmp_path, ["a.png a.png wide.flo", "a.png big.png wide.flo"], "l0.txt"))
    source = PairListSource(write_list(tmp_path, ["a.png a.png wide.flo", "a.png a.png bad.flo",
                                                  "a.png a.png unknown.flo"]))
    assert source.sizes == [(8, 8)] * 3
    for index, words in ((0, ["line 1", "sizes differ", "flow 10x8"]), (1, ["line 2", "bad.flo"]),
                         (2, ["line 3", "no known flow"])):
        with pytest.raises(PairListError) as e:
            source[index]
        for w in words:
            assert w in str(e.value), (w, str(e.value))
    with pytest.raises(PairListError, match="lists no pairs"):
        PairListSource(write_list(tmp_path, ["# nothing"], "empty.txt"))
    # the list accepts an extension in any case, and so does the reader behind it
    flow = np.full((8, 8, 2), 1.5, np.float32)
    io.write_flo(tmp_path / "upper.FLO", flow)
    item = PairListSource(write_list(tmp_path, ["a.png a.png upper.FLO"], "upper.txt"))[0]
    np.testing.assert_array_equal(item["flow"], flow)
    with pytest.raises(PairListError, match="no such pair list"):
        PairListSource(tmp_path / "nowhere.txt")


# ----------------------------------------------------------------- the baselines

def test_baselines_follow_a_known_translation():
    im1, im2 = shifted_pair(2.0, -1.0)
    inner = (slice(8, -8), slice(8, -8))                  # away from the borders
    np.testing.assert_array_equal(baseline_flow("zero", im1, im2), np.zeros((H, W, 2), np.float32))
    for name, bound in (("dis-medium", 0.3), ("farneback", 0.3)):
        flow = baseline_flow(name, im1, im2)
        assert flow.shape == (H, W, 2) and flow.dtype == np.float32
        err = np.linalg.norm(flow[inner] - (2.0, -1.0), axis=-1).mean()
        assert err < bound, (name, err)
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (im1, im2)]
    direct = cv2.calcOpticalFlowFarneback(*grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    np.testing.assert_array_equal(baseline_flow("farneback", *grey), direct)   # the benchmark's settings
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_flow("raft", im1, im2)


def test_baseline_estimator_has_no_solver():
    im1, im2 = shifted_pair(1.0, 1.0)
    est = BaselineEstimator("dis-medium")(np.stack([im1, im1]), np.stack([im2, im1]))
    assert est.flow.shape == (2, H, W, 2) and list(est.start) == ["dis-medium"] * 2
    assert np.abs(est.flow[1]).max() < 0.05                  # identical frames: no motion
    assert BaselineEstimator.has_solver is False and not est.converged.any()
    with pytest.raises(ValueError, match="no solver"):
        BaselineEstimator("zero")(im1, im2, flow_init=np.zeros((1, 6, 8, 2), np.float32))


# ----------------------------------------------------------------- the command

@pytest.mark.parametrize("name", BASELINES)
def test_eval_pairs_with_a_baseline_scores_each_pair(pairs, tmp_path, capsys, name):
    path, expected = pairs
    out = tmp_path / "res.json"
    rc, stdout, err = run(capsys, "eval", "--pairs", path, "--baseline", name, "--out", out,
                          "--per-frame", "--no-progress", "--panels", tmp_path / "panels")
    assert rc == 0, err
    res = json.loads(out.read_text())
    r = res["passes"]["pairs"]
    assert res["method"] == name and res["checkpoint"] is None and r["solver"] is None
    assert res["pairs"] == os.path.abspath(path) and res["max_size"] is None
    want = [masked_epe(baseline_flow(name, a, b), f, k) for a, b, f, k in expected]
    np.testing.assert_allclose([f["epe_masked"] for f in r["frames"]], want, rtol=1e-4, atol=0.02)
    np.testing.assert_allclose(r["summary"]["epe"], np.mean([f["epe_masked"] for f in r["frames"]]),
                               rtol=1e-6)
    assert r["pooling"] == "per_image" and r["metrics"]["n_valid"] == sum(k.sum() for *_, k in expected)
    assert f"baseline {name} ({'zero flow' if name == 'zero' else 'OpenCV'}, no model)" in stdout
    assert "fl_all%" in stdout
    assert len(list((tmp_path / "panels").glob("pairs_*.png"))) == 3
    if name == "zero":
        np.testing.assert_allclose(r["summary"]["epe"], np.mean([np.hypot(2, 1), np.hypot(3, .5),
                                                                  np.hypot(1.5, 2)]), rtol=1e-5)


@pytest.mark.parametrize("extra, culprit, words", [
    (["--baseline", "dis-medium", "--checkpoint", "ckpt"], "--baseline", ["--checkpoint"]),
    (["--baseline", "zero", "--refine", "fusion", "--start", "all"], "--baseline",
     ["--refine", "--start"]),
    (["--baseline", "zero", "--reuse", "reuse"], "--reuse", ["independent"]),
    (["--reuse", "warm"], "--reuse", ["independent"]),
    (["--submit", "SUB"], "--submit", ["--pairs"]),
    (["--baseline", "dis-medium", "--max-size", "512"], "--max-size", ["own size"]),
    (["--max-size", "16"], "--max-size", ["at least 32"]),
    (["--dataset", "middlebury"], "--dataset", ["not allowed with"]),
])
def test_eval_pairs_flag_errors_are_one_line(pairs, tmp_path, capsys, extra, culprit, words):
    path, _ = pairs
    before = tree_state(tmp_path)
    extra = [str(tmp_path / "sub") if a == "SUB" else a for a in extra]
    rc, _, err = run(capsys, "eval", "--pairs", path, "--out", tmp_path / "r.json", *extra)
    assert_one_line_error(rc, err, "eval", culprit, *words)
    assert tree_state(tmp_path) == before


def test_eval_pairs_bad_list_fails_before_the_model_and_writes_nothing(tmp_path, capsys, monkeypatch):
    fake = use_fake_model(monkeypatch)
    io.write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    path = write_list(tmp_path, ["a.png a.png gone.flo"])
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "eval", "--pairs", path, "--out", tmp_path / "r.json")
    assert_one_line_error(rc, err, "eval", str(path), "line 1", "gone.flo")
    assert tree_state(tmp_path) == before and fake.calls == 0
    (tmp_path / "bad.flo").write_bytes(b"nonsense")
    path = write_list(tmp_path, ["a.png a.png bad.flo"], "list2.txt")
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "eval", "--pairs", path, "--baseline", "zero", "--out", tmp_path / "r.json",
                     "--panels", tmp_path / "panels", "--no-progress")
    assert_one_line_error(rc, err, "eval", "line 1", "bad.flo")
    assert tree_state(tmp_path) == before                     # no results, no panels folder


def test_eval_pairs_that_would_not_fit_in_memory_are_refused_before_loading(pairs, tmp_path, capsys,
                                                                            monkeypatch):
    """The largest listed pair's estimated memory is checked before the model loads: one line
    naming its frame 1 and the --max-size that fits; nothing written."""
    from deq_flow_jax.cli import common

    fake = use_fake_model(monkeypatch)
    path, _ = pairs
    big = tmp_path / "my data" / "big.png"
    io.write_image(big, np.zeros((1080, 1920, 3), np.uint8))
    with open(path, "a") as f:
        f.write(f"'{big}' '{big}' 'my data/huge.flo'\n")
    io.write_flo(tmp_path / "my data" / "huge.flo", np.zeros((1080, 1920, 2), np.float32))
    monkeypatch.setattr(common, "available_memory_bytes", lambda: 8e9)
    before = tree_state(tmp_path)
    rc, _, err = run(capsys, "eval", "--pairs", path, "--out", tmp_path / "r.json")
    assert_one_line_error(rc, err, "eval", str(big), "1080x1920", "pass --max-size")
    assert tree_state(tmp_path) == before and fake.calls == 0


def test_eval_baseline_on_a_dataset_refuses_reuse(tmp_path, capsys):
    rc, _, err = run(capsys, "eval", "--dataset", "layered", "--baseline", "dis-medium", "--reuse", "reuse",
                     "--out", tmp_path / "r.json")
    assert_one_line_error(rc, err, "eval", "--reuse", "--baseline dis-medium has none")
    assert not (tmp_path / "r.json").exists()
