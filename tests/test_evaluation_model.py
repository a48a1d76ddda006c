"""Evaluation, inference, submissions and export with a tiny randomly initialised model.

Every test uses one input size (24x32) and one solver setting, so the model is
compiled once per start kind (cold / reused state) for the whole module.
Random weights give meaningless flow: these tests check plumbing, layouts and
round trips against the model's own `estimate_flow`, not accuracy.
"""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from deq_flow_jax import cli, io
from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings
from deq_flow_jax.evaluate.sequence import SequenceEstimator, run_sequence

H, W = 24, 32
SETTINGS = SolverSettings(solver="naive", max_steps=12, tol=1e-3, stop_mode="abs")
SOLVER_FLAGS = ["--solver", "naive", "--max-steps", "12", "--tol", "1e-3", "--stop-mode", "abs"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import jax

    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import ModelConfig, init_model

    cfg = ModelConfig.variant("tiny")
    variables = init_model(cfg, jax.random.PRNGKey(0), image_size=(16, 16))
    ckpt = str(tmp_path_factory.mktemp("ckpt") / "tiny")
    checkpoints.save(ckpt, variables, cfg)
    return variables, cfg, ckpt


@pytest.fixture(scope="module")
def estimator(model):
    variables, cfg, _ = model
    return FlowEstimator(variables, cfg, SETTINGS)


def _texture(seed=0, size=(60, 80)):
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, size + (3,)).astype(np.float32), (0, 0), 2)
    return (big - big.min()) / (big.max() - big.min()) * 255


def smooth_frames(n, speed=0.5, seed=0):
    """A textured scene panning smoothly (speed px/frame right, speed/2 down), (H, W, 3) uint8."""
    big = _texture(seed)
    out = []
    for t in range(n):
        m = np.float32([[1, 0, -10 - speed * t], [0, 1, -10 - 0.5 * speed * t]])
        out.append(np.round(cv2.warpAffine(big, m, (W, H), flags=cv2.INTER_LINEAR)).astype(np.uint8))
    return out


def test_reuse_lowers_solver_steps_on_smooth_motion(model):
    # With random weights the flow head's output has no zero, so the flow never settles
    # (no fixed point: every solve hits the budget). Zeroing the flow head's last layer
    # leaves the GRU-state equilibrium h* = GRU(h*, x), which does converge; along a
    # smooth sequence the previous h* is a better start than zeros. Flow-only warm
    # start cannot help here (the flow is frozen), which the test checks as a control.
    import jax

    variables, cfg, _ = model
    frozen = jax.tree_util.tree_map(lambda x: x, variables)
    head = dict(frozen["params"]["update_block"]["flow_head"]["conv2"])
    head["weight_g"] = np.zeros_like(head["weight_g"])
    head["bias"] = np.zeros_like(head["bias"])
    frozen["params"]["update_block"]["flow_head"]["conv2"] = head
    est = FlowEstimator(frozen, cfg, SETTINGS)
    frames = smooth_frames(6)
    steps = {m: np.array([int(e.steps[0]) for _, e in run_sequence(est, frames, m)])
             for m in ("none", "reuse", "warm")}
    assert steps["none"].max() < SETTINGS.max_steps          # it converges at all
    assert steps["reuse"][0] == steps["none"][0]              # first pair: nothing to reuse
    assert steps["reuse"][1:].mean() <= 0.8 * steps["none"][1:].mean(), steps
    np.testing.assert_array_equal(steps["warm"], steps["none"])


def test_sequence_estimator_passes_forward_interpolated_state(estimator):
    frames = smooth_frames(3)
    calls = []

    def spy(im1, im2, *, flow_init=None, cache=None):
        calls.append((flow_init, cache))
        return estimator(im1, im2, flow_init=flow_init, cache=cache)

    seq = SequenceEstimator(spy, "reuse")
    first = seq(frames[0][None], frames[1][None])
    seq(frames[1][None], frames[2][None])
    seq.reset()
    seq(frames[1][None], frames[2][None])
    from deq_flow_jax.evaluate.interpolate import forward_interpolate

    assert calls[0] == (None, None) and calls[2] == (None, None)
    hidden, flow = calls[1][1]
    np.testing.assert_array_equal(hidden, first.hidden)
    np.testing.assert_array_equal(flow, forward_interpolate(first.flow_lowres))


def test_infer_folder_writes_flows_colours_video_and_stats(model, estimator, tmp_path, capsys):
    _, _, ckpt = model
    frames = smooth_frames(4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        io.write_image(str(folder / f"f{i:02d}.png"), f)
    out = tmp_path / "out"
    rc = cli.main(["infer", str(folder), "--checkpoint", ckpt, "--out", str(out), "--npy",
                   "--no-progress", "--compare", *SOLVER_FLAGS])
    assert rc == 0, capsys.readouterr().err
    assert sorted(os.listdir(out / "flow")) == ["f00.flo", "f00.npy", "f01.flo", "f01.npy",
                                                "f02.flo", "f02.npy"]
    assert sorted(os.listdir(out / "color")) == ["f00.png", "f01.png", "f02.png"]
    # the flows are the model's own, pair by pair with reuse
    expected = [e.flow[0] for _, e in run_sequence(estimator, frames, "reuse")]
    for i, ref in enumerate(expected):
        np.testing.assert_allclose(io.read_flo(str(out / "flow" / f"f{i:02d}.flo")), ref, atol=1e-5)
        np.testing.assert_array_equal(np.load(out / "flow" / f"f{i:02d}.npy"),
                                      io.read_flo(str(out / "flow" / f"f{i:02d}.flo")))
    cap = cv2.VideoCapture(str(out / "flow.mp4"))
    n, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, shape = n + 1, frame.shape
    assert n == 3 and shape == (H, 2 * W + 4, 3)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_pairs"] == 3 and stats["reuse"] == "reuse"
    assert len(stats["compare"]["steps"]) == 3
    assert "steps per pair" in capsys.readouterr().out
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


def test_infer_image_files_to_gif_without_reuse(model, tmp_path):
    _, _, ckpt = model
    frames = smooth_frames(3)
    paths = []
    for i, f in enumerate(frames):
        paths.append(str(tmp_path / f"img{i}.png"))
        io.write_image(paths[-1], f)
    out = tmp_path / "gif"
    assert cli.main(["infer", *paths, "--checkpoint", ckpt, "--out", str(out), "--video", "gif",
                     "--no-reuse", "--no-progress", *SOLVER_FLAGS]) == 0
    from PIL import Image

    with Image.open(out / "flow.gif") as gif:
        assert gif.n_frames == 2
    assert sorted(os.listdir(out / "flow")) == ["img0.flo", "img1.flo"]


def test_sintel_and_kitti_submissions_read_back(estimator, tmp_path):
    from deq_flow_jax.evaluate.submission import write_kitti_submission, write_sintel_submission

    a, b = smooth_frames(3), smooth_frames(2, seed=1)
    items = [{"image1": a[i], "image2": a[i + 1], "meta": {"scene": "alley", "frame": i}}
             for i in range(2)]
    items.append({"image1": b[0], "image2": b[1], "meta": {"scene": "bamboo", "frame": 0}})
    res = write_sintel_submission(estimator, {"clean": items, "final": items[:1]},
                                  str(tmp_path / "sintel"), progress=False)
    assert res["files"] == {"clean": 3, "final": 1}
    seq = SequenceEstimator(estimator, "reuse")
    ref = [seq(a[0][None], a[1][None]).flow[0], seq(a[1][None], a[2][None]).flow[0]]
    seq.reset()
    ref.append(seq(b[0][None], b[1][None]).flow[0])
    names = ["alley/frame0001.flo", "alley/frame0002.flo", "bamboo/frame0001.flo"]
    for name, r in zip(names, ref):
        np.testing.assert_allclose(io.read_flo(str(tmp_path / "sintel" / "clean" / name)), r, atol=1e-5)
    assert os.listdir(tmp_path / "sintel" / "final" / "alley") == ["frame0001.flo"]

    kitti = [{"image1": a[0], "image2": a[1], "meta": {"id": "000000_10.png"}},
             {"image1": b[0], "image2": b[1], "meta": {"id": "000001_10.png"}}]
    write_kitti_submission(estimator, kitti, str(tmp_path / "kitti"), progress=False)
    assert sorted(os.listdir(tmp_path / "kitti" / "flow")) == ["000000_10.png", "000001_10.png"]
    flow, valid = io.read_kitti_flow(str(tmp_path / "kitti" / "flow" / "000001_10.png"))
    r = estimator(b[0], b[1]).flow[0]
    np.testing.assert_allclose(flow, np.round(r * 64) / 64, atol=1e-6)   # 1/64 px quantisation
    assert (valid == 1).all()
    with pytest.raises(Exception, match="exists"):
        write_kitti_submission(estimator, kitti, str(tmp_path / "kitti"), progress=False)


def test_evaluate_source_matches_direct_metrics(estimator):
    from deq_flow_jax import metrics
    from deq_flow_jax.evaluate.protocols import evaluate_source

    frames = smooth_frames(3)
    rng = np.random.default_rng(0)
    items = []
    for i in range(2):
        gt = rng.normal(scale=2.0, size=(H, W, 2)).astype(np.float32)
        valid = (rng.uniform(size=(H, W)) > 0.3).astype(np.float32)
        items.append({"image1": frames[i], "image2": frames[i + 1], "flow": gt, "valid": valid,
                      "meta": {"scene": "s", "frame": i}})
    res = evaluate_source(estimator, items, per_frame=True, progress=False)
    preds = [estimator(it["image1"], it["image2"]).flow[0] for it in items]
    # a second method: the training metrics on the same predictions, pooled over both images
    ref = metrics.flow_metrics(np.stack(preds), np.stack([it["flow"] for it in items]),
                               np.stack([it["valid"] for it in items]))
    m = res["metrics"]
    np.testing.assert_allclose(m["epe_masked"], float(ref["epe"]), rtol=1e-5)
    np.testing.assert_allclose(m["1px_masked"], float(ref["1px"]), rtol=1e-5)
    np.testing.assert_allclose(m["fl_all"], float(ref["fl_all"]), rtol=1e-5)
    assert res["summary"] == {k: m[k + "_masked"] for k in ("epe", "1px", "3px", "5px")} | {"fl_all": m["fl_all"]}
    all_px = np.concatenate([np.linalg.norm(p - it["flow"], axis=-1).ravel() for p, it in zip(preds, items)])
    np.testing.assert_allclose(m["epe"], all_px.mean(), rtol=1e-5)
    assert len(res["frames"]) == 2 and res["solver"]["steps"]["max"] <= SETTINGS.max_steps


def test_eval_cli_on_synthetic(model, tmp_path, capsys):
    _, _, ckpt = model
    out = tmp_path / "res.json"
    args = ["eval", "--checkpoint", ckpt, "--dataset", "synthetic", "--data-dir", str(tmp_path / "data"),
            "--synthetic-size", str(H), str(W), "--synthetic-num-train", "0", "--synthetic-num-val", "2",
            "--out", str(out), "--per-frame", "--no-progress", "--panels", str(tmp_path / "panels"),
            *SOLVER_FLAGS]
    assert cli.main(args) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    r = res["passes"]["synthetic"]
    assert r["n_pairs"] == 2 and len(r["frames"]) == 2
    assert np.isfinite(r["metrics"]["epe_masked"]) and 0 <= r["metrics"]["fl_all"] <= 100
    assert r["summary"]["epe"] == r["metrics"]["epe_masked"]   # synthetic pools the valid pixels
    assert "fl_all%" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "panels")) == [".deq-flow-output", "synthetic_00000.png",
                                                       "synthetic_00001.png"]
    assert cli.main(args) == 2                                  # results exist: refused
    assert "exists" in capsys.readouterr().err


def test_eval_cli_on_middlebury(model, estimator, tmp_path, capsys):
    """`prepare middlebury` + `eval --dataset middlebury` on a copy in Middlebury's layout: the
    EPE is each pair's over its known pixels (unknown flow is stored as 1e10), averaged."""
    _, _, ckpt = model
    manual = tmp_path / "middlebury"
    frames, gts = smooth_frames(4, speed=1.0), []
    for k, scene in enumerate(("Grove2", "Urban3")):
        gt = np.random.default_rng(k).normal(scale=2.0, size=(H, W, 2)).astype(np.float32)
        gt[:, :5] = 1e10                                        # unknown: left out of every metric
        gts.append(gt)
        io.write_flo(manual / "other-gt-flow" / scene / "flow10.flo", gt)
        for i, f in ((10, frames[2 * k]), (11, frames[2 * k + 1])):
            io.write_image(manual / "other-data" / scene / f"frame{i}.png", f)
    data_dir = str(tmp_path / "tfds")
    assert cli.main(["prepare", "middlebury", "--manual-dir", str(manual), "--data-dir", data_dir]) == 0
    out = tmp_path / "mb.json"
    assert cli.main(["eval", "--checkpoint", ckpt, "--dataset", "middlebury", "--data-dir", data_dir,
                     "--out", str(out), "--per-frame", "--no-progress", *SOLVER_FLAGS]) == 0, \
        capsys.readouterr().err
    r = json.loads(out.read_text())["passes"]["middlebury"]
    per_pair = []
    for k in range(2):
        err = np.linalg.norm(estimator(frames[2 * k], frames[2 * k + 1]).flow[0] - gts[k], axis=-1)
        per_pair.append(err[:, 5:].mean())
    assert r["n_pairs"] == 2 and [f["scene"] for f in r["frames"]] == ["Grove2", "Urban3"]
    np.testing.assert_allclose(r["summary"]["epe"], np.mean(per_pair), rtol=1e-5)
    np.testing.assert_allclose([f["epe_masked"] for f in r["frames"]], per_pair, rtol=1e-5)
    assert r["metrics"]["n_valid"] == 2 * H * (W - 5)
    assert all(f["epe"] < 100 for f in r["frames"])              # all pixels: 1e10 was not stored
    assert "middlebury" in capsys.readouterr().out


def test_export_round_trip_without_model_code(model, estimator, tmp_path, capsys):
    _, _, ckpt = model
    out = tmp_path / "tiny.jaxexp"
    assert cli.main(["export", "--checkpoint", ckpt, "--out", str(out), "--height", str(H),
                     "--width", str(W), "--check", *SOLVER_FLAGS]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "exported tiny" in printed and "check: max" in printed
    assert cli.main(["export", "--checkpoint", ckpt, "--out", str(out), "--height", str(H),
                     "--width", str(W)]) == 2                   # exists: refused
    assert "exists" in capsys.readouterr().err
    assert json.loads((tmp_path / "tiny.jaxexp.json").read_text())["settings"]["max_steps"] == 12
    frames = smooth_frames(2)
    np.save(tmp_path / "im.npy", np.stack(frames).astype(np.float32))
    # a fresh interpreter that imports only jax and numpy runs the file
    code = (
        "import sys, numpy as np, jax\n"
        f"exp = jax.export.deserialize(bytearray(open({str(out)!r}, 'rb').read()))\n"
        f"im = np.load({str(tmp_path / 'im.npy')!r})\n"
        "flow = exp.call(im[:1], im[1:])[0]\n"
        f"np.save({str(tmp_path / 'flow.npy')!r}, np.asarray(flow))\n"
        "assert not [m for m in sys.modules if m.startswith('deq_flow_jax')]\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(tmp_path), timeout=300)
    ref = estimator(frames[0], frames[1]).flow
    np.testing.assert_allclose(np.load(tmp_path / "flow.npy"), ref, atol=1e-4)


def test_infer_video_file(model, tmp_path, capsys):
    from deq_flow_jax.evaluate.video import VideoWriter

    _, _, ckpt = model
    with VideoWriter(str(tmp_path / "clip.mp4"), fps=8) as w:
        for f in smooth_frames(4):
            w.write(f)
    out = tmp_path / "clip_out"
    assert cli.main(["infer", str(tmp_path / "clip.mp4"), "--checkpoint", ckpt, "--out", str(out),
                     "--no-progress", "--no-color", *SOLVER_FLAGS]) == 0, capsys.readouterr().err
    assert sorted(os.listdir(out / "flow")) == [f"frame_{i:06d}.flo" for i in range(3)]
    assert not (out / "color").exists()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["kind"] == "video" and stats["video"] == "flow.mp4" and stats["n_pairs"] == 3


def test_truncated_frame_fails_before_any_pair_and_leaves_nothing(model, tmp_path, capsys):
    _, _, ckpt = model
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(smooth_frames(3)):
        io.write_image(str(folder / f"{i}.png"), f)
    data = (folder / "2.png").read_bytes()
    (folder / "2.png").write_bytes(data[: len(data) // 2])     # header intact, pixels cut
    out = tmp_path / "out"
    assert cli.main(["infer", str(folder), "--checkpoint", ckpt, "--out", str(out),
                     "--no-progress", *SOLVER_FLAGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[-1]] and err[-1].startswith("deq-flow infer: ") and "2.png" in err[-1]
    assert sorted(os.listdir(tmp_path)) == ["frames"]             # no output, no staging folder


def test_max_size_downscales_for_the_model_and_upsamples_the_flow(model, estimator, tmp_path, capsys):
    """--max-size: frames of 48x64 are estimated at 24x32 (area downscale) and the flow is
    upsampled back, each component doubled; stats.json and the output say so."""
    from deq_flow_jax.evaluate.estimator import _resize_batch, upsample_flow, working_size

    _, _, ckpt = model
    big = [cv2.resize(f, (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR) for f in smooth_frames(2)]
    paths = []
    for i, f in enumerate(big):
        paths.append(str(tmp_path / f"big{i}.png"))
        io.write_image(paths[-1], f)
    out = tmp_path / "out"
    assert cli.main(["infer", *paths, "--checkpoint", ckpt, "--out", str(out), "--max-size", "32",
                     "--no-progress", *SOLVER_FLAGS]) == 0
    assert f"estimated at {H}x{W} (--max-size 32)" in capsys.readouterr().out
    flow = io.read_flo(str(out / "flow" / "big0.flo"))
    assert flow.shape == (2 * H, 2 * W, 2)
    small = [_resize_batch(f[None].astype(np.float32), (H, W))[0] for f in big]
    ref = upsample_flow(estimator(small[0], small[1]).flow, (2 * H, 2 * W))[0]
    np.testing.assert_allclose(flow, ref, atol=1e-4)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["size"] == [2 * H, 2 * W] and stats["working_size"] == [H, W]
    # The same estimator without max_size sees the frames at their own size.
    assert working_size(2 * H, 2 * W, None) == (2 * H, 2 * W)
    assert working_size(2 * H, 2 * W, 0) == (2 * H, 2 * W)
    assert working_size(1080, 1920, 1024) == (576, 1024)
    assert working_size(300, 200, 1024) == (300, 200)


def test_upsample_flow_scales_vectors_with_the_frame():
    from deq_flow_jax.evaluate.estimator import upsample_flow

    ys, xs = np.mgrid[0:24, 0:32].astype(np.float32)
    # a flow linear in the pixel centres: u = 0.1 x, v = -0.2 y (+ constants), at 24x32
    low = np.stack([0.1 * xs + 1.0, -0.2 * ys + 0.5], -1)[None]
    up = upsample_flow(low, (72, 64))[0]                 # 3x in y, 2x in x
    Y, X = np.mgrid[0:72, 0:64].astype(np.float32)
    x_low, y_low = (X + 0.5) / 2 - 0.5, (Y + 0.5) / 3 - 0.5     # pixel-centre correspondence
    expect = np.stack([2 * (0.1 * x_low + 1.0), 3 * (-0.2 * y_low + 0.5)], -1)
    inner = (slice(3, -3), slice(2, -2))                  # bilinear clamps at the border
    np.testing.assert_allclose(up[inner], expect[inner], atol=1e-4)


def test_eval_cli_on_a_pair_list(model, estimator, tmp_path, capsys):
    """`eval --pairs LIST` runs the model on the listed pairs: each pair's EPE over its known
    pixels (KITTI's valid bit) is the model's own, and the summary their mean."""
    _, _, ckpt = model
    frames, gts, lines = smooth_frames(4, speed=1.0), [], []
    for k in range(2):
        gt = np.random.default_rng(k).normal(scale=2.0, size=(H, W, 2)).astype(np.float32)
        valid = np.ones((H, W), bool)
        valid[: 4 * (k + 1)] = False
        gts.append((gt, valid))
        io.write_image(tmp_path / f"{k}_a.png", frames[2 * k])
        io.write_image(tmp_path / f"{k}_b.png", frames[2 * k + 1])
        io.write_kitti_flow(tmp_path / f"{k}_gt.png", gt, valid)
        lines.append(f"{k}_a.png {k}_b.png {k}_gt.png")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "res.json"
    assert cli.main(["eval", "--checkpoint", ckpt, "--pairs", str(tmp_path / "pairs.txt"), "--out", str(out),
                     "--per-frame", "--no-progress", *SOLVER_FLAGS]) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    r = res["passes"]["pairs"]
    per_pair = []
    for k, (gt, valid) in enumerate(gts):
        gt_q = np.round(gt * 64) / 64                              # KITTI PNG: 1/64 px
        err = np.linalg.norm(estimator(frames[2 * k], frames[2 * k + 1]).flow[0] - gt_q, axis=-1)
        per_pair.append(err[valid].mean())
    np.testing.assert_allclose([f["epe_masked"] for f in r["frames"]], per_pair, rtol=1e-5)
    np.testing.assert_allclose(r["summary"]["epe"], np.mean(per_pair), rtol=1e-5)
    assert res["method"] == "model" and r["solver"]["steps"]["max"] <= SETTINGS.max_steps
    assert [f["id"] for f in r["frames"]] == ["0_a.png", "1_a.png"]


def test_eval_pairs_max_size_estimates_at_the_working_size(model, tmp_path, capsys):
    """`eval --pairs --max-size N`: frames twice the working size are estimated at N on their
    longer side and the flow upsampled, as `FlowEstimator(max_size=N)` does; scored at full size."""
    variables, cfg, ckpt = model
    big = [cv2.resize(f, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC) for f in smooth_frames(2)]
    gt = np.zeros((2 * H, 2 * W, 2), np.float32)
    io.write_image(tmp_path / "a.png", big[0])
    io.write_image(tmp_path / "b.png", big[1])
    io.write_flo(tmp_path / "gt.flo", gt)
    (tmp_path / "pairs.txt").write_text("a.png b.png gt.flo\n")
    out = tmp_path / "res.json"
    assert cli.main(["eval", "--checkpoint", ckpt, "--pairs", str(tmp_path / "pairs.txt"), "--out", str(out),
                     "--max-size", str(W), "--no-progress", *SOLVER_FLAGS]) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    flow = FlowEstimator(variables, cfg, SETTINGS, max_size=W)(big[0], big[1]).flow[0]
    assert flow.shape == (2 * H, 2 * W, 2) and res["max_size"] == W
    np.testing.assert_allclose(res["passes"]["pairs"]["summary"]["epe"],
                               np.linalg.norm(flow, axis=-1).mean(), rtol=1e-5)
