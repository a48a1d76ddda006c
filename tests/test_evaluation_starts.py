"""Where the solver starts (deq_flow_jax.evaluate.starts, SolverSettings.start, --start, the
model directory's "inference" entry) and the per-pair choice between two flows (refine.pick_flow)."""

import cv2
import numpy as np
import pytest
from checkpoint_helpers import assert_bad_inference_entry_refused, tiny_variables

from deq_flow_jax import checkpoints
from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings, _resize_batch
from deq_flow_jax.evaluate.refine import fuse_dis, pick_flow, refine_flow
from deq_flow_jax.evaluate.starts import COARSE_SCALES, START_MODES, coarse_sizes, warm_start


def _textured_pair(h=128, w=160, shift=(5, -3), seed=0):
    """Smooth random texture (H, W, 3) 0..255 and the same moved by integer `shift` (x, y):
    frame 2 at p + shift shows frame 1 at p."""
    rng = np.random.default_rng(seed)
    dx, dy = shift
    big = cv2.GaussianBlur(rng.uniform(0, 255, (h + 40, w + 40, 3)).astype(np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min()) * 255
    image1 = big[20:20 + h, 20:20 + w]
    image2 = big[20 - dy:20 - dy + h, 20 - dx:20 - dx + w]
    return image1, image2


def test_coarse_sizes_drop_levels_below_the_minimum():
    assert COARSE_SCALES == (4, 2)
    assert coarse_sizes(384, 512) == [(96, 128), (192, 256)]
    assert coarse_sizes(200, 300) == [(100, 150)]       # 1/4 would be 50 x 75
    assert coarse_sizes(100, 100) == []


@pytest.mark.parametrize("pad_mode", ["sintel", "kitti"])
def test_warm_start_is_the_flow_in_padded_eighth_resolution_pixels(pad_mode):
    """A constant flow of a half-size frame becomes twice that flow at full size, in pixels of
    the 1/8 grid of the padded frame (divided by 8), on that grid's shape."""
    flow = np.broadcast_to(np.array([3.0, -2.0], np.float32), (2, 50, 75, 2))
    out = warm_start(flow, (100, 150), pad_mode)
    assert out.shape == (2, 13, 19, 2) and out.dtype == np.float32      # padded 104 x 152
    np.testing.assert_allclose(out[..., 0], 6.0 / 8, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], -4.0 / 8, atol=1e-6)
    # a ramp keeps its orientation: larger x flow on the right stays on the right
    ramp = np.zeros((1, 64, 64, 2), np.float32)
    ramp[..., 0] = np.linspace(0, 8, 64)[None, None, :]
    r = warm_start(ramp, (64, 64))
    assert r.shape == (1, 8, 8, 2) and np.all(np.diff(r[0, 0, :, 0]) > 0)


def test_bad_start_is_refused():
    assert SolverSettings().start == "zero" and START_MODES == ("zero", "coarse", "both")
    with pytest.raises(ValueError, match="start must be one of zero, coarse, both"):
        SolverSettings(start="pyramid")


def test_pick_flow_takes_the_candidate_that_matches_the_frames():
    image1, image2 = _textured_pair()
    true = np.broadcast_to(np.array([5, -3], np.float32), image1.shape[:2] + (2,))
    wrong = true + np.array([2.5, 1.5], np.float32)
    assert pick_flow(image1, image2, [true, wrong]) == 0
    assert pick_flow(image1, image2, [wrong, true]) == 1
    assert pick_flow(image1, image2, [wrong, wrong.copy()]) == 0          # ties: the first
    assert pick_flow(image1, image2, [true]) == 0
    gone = np.full_like(true, 1000.0)                                    # every pixel leaves
    assert pick_flow(image1, image2, [gone, true]) == 0


@pytest.fixture(scope="module")
def tiny():
    return tiny_variables()


@pytest.fixture(scope="module")
def runs(tiny):
    """Two 256x320 pairs (one batch) under each start; every check below reuses these shapes
    (one compilation each: 64x80 and 256x320 cold, 128x160 and 256x320 warm; the plain
    fixed-point iteration, quickest to compile, as the starts do not depend on the solver)."""
    variables, cfg = tiny
    pairs = [_textured_pair(256, 320, (5, -3), seed=1), _textured_pair(256, 320, (-7, 2), seed=2)]
    i1 = np.stack([p[0] for p in pairs]).astype(np.float32)
    i2 = np.stack([p[1] for p in pairs]).astype(np.float32)
    est = {k: FlowEstimator(variables, cfg, SolverSettings("naive", max_steps=3, start=k)) for k in START_MODES}
    return i1, i2, est, {k: e(i1, i2) for k, e in est.items()}


def test_coarse_start_and_both(runs):
    """start="coarse" equals solving at 1/4, then at 1/2 from that, then at full size from
    that, each by hand with `warm_start`; Estimate.coarse says so. start="both" returns, for
    each pair of a batch, the zero-start or the coarse-start flow, whichever pick_flow prefers,
    with that solve's statistics; a warm start or frames too small for the pyramid mean one
    solve from there. (One test: the shapes compile once per test worker.)"""
    i1, i2, est, out = runs
    zero, coarse = est["zero"], out["coarse"]
    (h4, w4), (h2, w2) = coarse_sizes(256, 320)
    f4 = zero(_resize_batch(i1, (h4, w4)), _resize_batch(i2, (h4, w4))).flow
    f2 = zero(_resize_batch(i1, (h2, w2)), _resize_batch(i2, (h2, w2)), flow_init=warm_start(f4, (h2, w2))).flow
    by_hand = zero(i1, i2, flow_init=warm_start(f2, (256, 320)))
    np.testing.assert_allclose(coarse.flow, by_hand.flow, atol=1e-4)
    np.testing.assert_allclose(coarse.flow_lowres, by_hand.flow_lowres, atol=1e-5)
    assert coarse.coarse.tolist() == [True, True] and coarse.flow.shape == (2, 256, 320, 2)
    assert out["zero"].coarse.tolist() == [False, False]
    assert not np.allclose(out["zero"].flow, coarse.flow, atol=1e-3)

    zero, both = out["zero"], out["both"]
    for i in range(2):
        k = pick_flow(i1[i], i2[i], [zero.flow[i], coarse.flow[i]])
        chosen = (zero, coarse)[k]
        assert both.coarse[i] == bool(k)
        np.testing.assert_allclose(both.flow[i], chosen.flow[i], atol=1e-4)
        np.testing.assert_allclose(both.hidden[i], chosen.hidden[i], atol=1e-5)
        assert both.steps[i] == chosen.steps[i] and both.nstep[i] == chosen.nstep[i]
    warm = est["both"](i1, i2, flow_init=np.zeros((2, 32, 40, 2), np.float32))
    np.testing.assert_allclose(warm.flow, zero.flow, atol=1e-4)    # a zero warm start: the zero start
    assert warm.coarse.tolist() == [False, False]
    small = _resize_batch(i1, (64, 80)), _resize_batch(i2, (64, 80))          # no pyramid level fits
    assert est["both"](*small).coarse.tolist() == [False, False]
    np.testing.assert_allclose(est["both"](*small).flow, est["zero"](*small).flow, atol=1e-6)


def test_both_with_fusion_dis_offers_dis_after_the_pick(runs, tiny):
    """start="both", refine="fusion+dis": each start's flow gets the fusion, pick_flow chooses
    between the two, and only the pick is fused with DIS (as measured in
    docs/pretrained_history.md, "DIS as a last candidate")."""
    i1, i2, _, out = runs
    variables, cfg = tiny
    est = FlowEstimator(variables, cfg, SolverSettings("naive", max_steps=3, start="both", refine="fusion+dis"))(i1, i2)
    for i in range(2):
        cands = [refine_flow(i1[i], i2[i], out[k].flow[i], "fusion") for k in ("zero", "coarse")]
        k = pick_flow(i1[i], i2[i], cands)
        assert est.coarse[i] == bool(k)
        np.testing.assert_allclose(est.flow[i], fuse_dis(i1[i], i2[i], cands[k]), atol=1e-3)


def test_start_entry_round_trip_cli_flag_and_bad_entry(tiny, tmp_path):
    """{"start": "both"} in a model directory makes it the commands' default (`--start zero`
    overrides it); a bad entry is one line naming model_config.json."""
    from deq_flow_jax.cli import infer, model_args

    variables, cfg = tiny
    path = str(tmp_path / "m")
    checkpoints.save(path, variables, cfg, inference={"refine": "fusion", "start": "both"})
    assert checkpoints.inference(path) == {"refine": "fusion", "start": "both"}
    parser = infer.build_parser()

    def settings(*argv):
        return model_args.load_model_and_settings(parser.parse_args(["a.png", "b.png", "--out", "o", *argv]))[2]

    assert settings("--checkpoint", path).start == "both"
    assert settings("--checkpoint", path, "--start", "zero").start == "zero"
    plain = str(tmp_path / "plain")
    checkpoints.save(plain, variables, cfg)
    assert settings("--checkpoint", plain).start == "zero"
    assert settings("--checkpoint", plain, "--start", "coarse").start == "coarse"
    from deq_flow_jax.cli.common import CliError
    with pytest.raises(CliError, match="--start: invalid choice: 'pyramid'"):
        parser.parse_args(["a.png", "b.png", "--out", "o", "--start", "pyramid"])

    assert_bad_inference_entry_refused(tmp_path, variables, cfg, path, "start", "half")
