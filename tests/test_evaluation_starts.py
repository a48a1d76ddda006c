"""Where the solver starts (deq_flow_jax.evaluate.starts, SolverSettings.start, --start, the
model directory's "inference" entry) and the per-pair choice between two flows (refine.pick_flow)."""

import cv2
import numpy as np
import pytest
from checkpoint_helpers import assert_bad_inference_entry_refused, tiny_variables

from deq_flow_jax import checkpoints
from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings, _resize_batch
from deq_flow_jax.evaluate.refine import fuse_dis, pick_flow, refine_flow
from deq_flow_jax.evaluate.starts import (
    COARSE_SCALES,
    HOMOGRAPHY_LOOSE_SHARE,
    HOMOGRAPHY_MIN_INLIERS,
    HOMOGRAPHY_MIN_SHARE,
    HOMOGRAPHY_SECOND_SHARE,
    SHIFT_MIN_FRACTION,
    START_MODES,
    HomographyFit,
    coarse_sizes,
    global_homography,
    global_shift,
    homography_flow,
    homography_start_wanted,
    shift_start_wanted,
    warm_start,
)


def _textured_pair(h=128, w=160, shift=(5, -3), seed=0):
    """Smooth random texture (H, W, 3) 0..255 and the same moved by integer `shift` (x, y):
    frame 2 at p + shift shows frame 1 at p."""
    rng = np.random.default_rng(seed)
    dx, dy = shift
    m = max(20, abs(dx), abs(dy))                     # margin: both windows inside the texture
    big = cv2.GaussianBlur(rng.uniform(0, 255, (h + 2 * m, w + 2 * m, 3)).astype(np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min()) * 255
    image1 = big[m:m + h, m:m + w]
    image2 = big[m - dy:m - dy + h, m - dx:m - dx + w]
    return image1, image2


def _camera(w, h, zoom=1.0, degrees=0.0, shift=(0.0, 0.0)):
    """3x3 homography frame 1 -> frame 2: zoom and roll about the frame centre, then a shift."""
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1]], np.float64)
    a = np.radians(degrees)
    r = np.array([[zoom * np.cos(a), -zoom * np.sin(a), 0], [zoom * np.sin(a), zoom * np.cos(a), 0], [0, 0, 1]])
    t = np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]], np.float64)
    return t @ c @ r @ np.linalg.inv(c)


def _warped_pair(h, w, hmat, seed=0):
    """A textured frame and the same under the homography hmat: frame 2 at H p shows frame 1
    at p (reflected beyond the border), so the flow is homography_flow(hmat)."""
    image1 = _textured_pair(h, w, (0, 0), seed=seed)[0]
    image2 = cv2.warpPerspective(image1, hmat, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT_101)
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
    assert SolverSettings().start == "zero" and START_MODES == ("zero", "coarse", "both", "all")
    with pytest.raises(ValueError, match="start must be one of zero, coarse, both, all"):
        SolverSettings(start="pyramid")


@pytest.mark.parametrize("shift", [(0, 0), (5, -3), (-37, 12), (60, 0)])
def test_global_shift_finds_a_translation(shift):
    """Phase correlation recovers an integer translation of a textured frame within 0.5 px, in
    the flow's convention (frame 2 at p + shift shows frame 1 at p), with a strong peak; a
    frame paired with unrelated texture gives a weak one."""
    image1, image2 = _textured_pair(128, 160, shift)
    dx, dy, response = global_shift(image1, image2)
    np.testing.assert_allclose([dx, dy], shift, atol=0.5)     # a start: the solve refines it
    assert response > 0.3, response
    other = _textured_pair(128, 160, (0, 0), seed=5)[0]
    assert global_shift(image1, other)[2] < 0.1


def test_shift_start_wanted_from_a_twentieth_of_the_shorter_side():
    assert SHIFT_MIN_FRACTION == 1 / 20
    assert shift_start_wanted((19.25, 0), (384, 512)) and shift_start_wanted((-12, 16), (384, 512))
    assert not shift_start_wanted((19.1, 0), (384, 512)) and not shift_start_wanted((0, -16), (384, 512))
    assert shift_start_wanted((0, -12.5), (240, 320))


def test_global_homography_finds_a_camera_motion():
    """SIFT + RANSAC recover a zoom, roll and pan of a textured frame: the homography's flow
    is within 0.3 px of the truth on average, with many inliers; the same frames give the same
    homography; unrelated frames give too few inliers for a start."""
    hmat = _camera(320, 256, zoom=1.15, degrees=7.0, shift=(25.0, -10.0))
    image1, image2 = _warped_pair(256, 320, hmat, seed=4)
    found, inliers, matches, second = global_homography(image1, image2)
    assert second < HOMOGRAPHY_SECOND_SHARE * max(matches - inliers, 1)     # no second motion
    assert inliers >= 4 * HOMOGRAPHY_MIN_INLIERS and inliers >= HOMOGRAPHY_MIN_SHARE * matches, (inliers, matches)
    truth = homography_flow(hmat, (256, 320))
    assert np.linalg.norm(homography_flow(found, (256, 320)) - truth, axis=-1).mean() < 0.3
    np.testing.assert_array_equal(global_homography(image1, image2)[0], found)
    other = _textured_pair(256, 320, (0, 0), seed=5)[0]
    assert global_homography(image1, other)[1] < HOMOGRAPHY_MIN_INLIERS
    assert global_homography(np.zeros((64, 80, 3)), np.zeros((64, 80, 3))) == HomographyFit(None, 0, 0, 0)


def test_global_homography_counts_a_second_motion():
    """Frame 2's left half under one camera motion, its right half under another: the first
    RANSAC fits one half's homography, and the second, on the matches it left out, the other's:
    those are not false matches, and the loose share does not offer the start."""
    h, w = 256, 320
    one, other = _camera(w, h, zoom=1.1, shift=(20.0, 0.0)), _camera(w, h, degrees=-8.0, shift=(-15.0, 10.0))
    image1, left = _warped_pair(h, w, one, seed=7)
    right = cv2.warpPerspective(image1, other, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image2 = np.where((np.arange(w) < w // 2)[None, :, None], left, right)
    fit = global_homography(image1, image2)
    rest = fit.matches - fit.inliers
    assert rest >= HOMOGRAPHY_MIN_INLIERS and fit.second >= HOMOGRAPHY_SECOND_SHARE * rest, fit[1:]


def test_homography_flow_and_the_start_gate():
    """homography_flow is pi(H [x, y, 1]) - (x, y); the gate wants enough inliers, most matches
    among them, a mean motion of a twentieth of the shorter side, and a motion the constant shift
    does not already give."""
    hw = (384, 512)
    shift = homography_flow(_camera(512, 384, shift=(30.0, 0.0)), hw)
    np.testing.assert_allclose(shift, np.broadcast_to([30.0, 0.0], (384, 512, 2)), atol=1e-4)
    zoom = homography_flow(_camera(512, 384, zoom=1.2), hw)
    np.testing.assert_allclose(zoom[0, 0], [-0.2 * 255.5, -0.2 * 191.5], atol=1e-3)    # corner moves out
    assert np.abs(zoom[192, 256]).max() < 0.2                                        # centre stays
    n = HOMOGRAPHY_MIN_INLIERS
    assert HOMOGRAPHY_MIN_SHARE == 0.75
    assert homography_start_wanted(zoom, n, n, (0.0, 0.0), hw)          # mean |flow| 32 px
    assert not homography_start_wanted(zoom, n - 1, n - 1, (0.0, 0.0), hw)
    assert homography_start_wanted(zoom, 75, 100, (0.0, 0.0), hw)
    assert not homography_start_wanted(zoom, 74, 100, (0.0, 0.0), hw, second=11)   # an object's motion
    # from 60 % of the matches where the ones left out fit no second motion (false matches)
    assert (HOMOGRAPHY_LOOSE_SHARE, HOMOGRAPHY_SECOND_SHARE) == (0.6, 0.4)
    assert homography_start_wanted(zoom, 74, 100, (0.0, 0.0), hw, second=10)
    assert homography_start_wanted(zoom, 60, 100, (0.0, 0.0), hw, second=15)
    assert not homography_start_wanted(zoom, 74, 100, (0.0, 0.0), hw)   # second not known: 75 %
    assert not homography_start_wanted(zoom, 60, 100, (0.0, 0.0), hw, second=16)
    assert not homography_start_wanted(zoom, 59, 100, (0.0, 0.0), hw, second=0)
    small = homography_flow(_camera(512, 384, zoom=1.05), hw)           # mean 8 px
    assert not homography_start_wanted(small, n, n, (0.0, 0.0), hw)
    assert not homography_start_wanted(shift, n, n, (30.5, -0.5), hw)    # the shift start covers it
    assert homography_start_wanted(shift, n, n, (22.0, 0.0), hw)         # a shift 8 px off
    broken = zoom.copy()
    broken[0, 0] = np.inf
    assert not homography_start_wanted(broken, n, n, (0.0, 0.0), hw)


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
    that, each by hand with `warm_start`; Estimate.start says so. start="both" returns, for
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
    assert coarse.start.tolist() == ["coarse"] * 2 and coarse.flow.shape == (2, 256, 320, 2)
    assert out["zero"].start.tolist() == ["zero"] * 2
    assert not np.allclose(out["zero"].flow, coarse.flow, atol=1e-3)

    zero, both = out["zero"], out["both"]
    for i in range(2):
        k = pick_flow(i1[i], i2[i], [zero.flow[i], coarse.flow[i]])
        chosen = (zero, coarse)[k]
        assert both.start[i] == ("zero", "coarse")[k]
        np.testing.assert_allclose(both.flow[i], chosen.flow[i], atol=1e-4)
        np.testing.assert_allclose(both.hidden[i], chosen.hidden[i], atol=1e-5)
        assert both.steps[i] == chosen.steps[i] and both.nstep[i] == chosen.nstep[i]
    warm = est["both"](i1, i2, flow_init=np.zeros((2, 32, 40, 2), np.float32))
    np.testing.assert_allclose(warm.flow, zero.flow, atol=1e-4)    # a zero warm start: the zero start
    assert warm.start.tolist() == ["zero"] * 2
    small = _resize_batch(i1, (64, 80)), _resize_batch(i2, (64, 80))          # no pyramid level fits
    assert est["both"](*small).start.tolist() == ["zero"] * 2
    np.testing.assert_allclose(est["both"](*small).flow, est["zero"](*small).flow, atol=1e-6)
    assert est["coarse"](*small).start.tolist() == ["zero"] * 2


def _batch_with(pair, runs):
    """A batch of `pair` (image1, image2) and the runs' second pair, and "all"'s estimate on it,
    after checking that the second pair's flow and start are "both"'s: (j1, j2, estimate)."""
    i1, i2, est, _ = runs
    j1 = np.stack([pair[0], i1[1]]).astype(np.float32)
    j2 = np.stack([pair[1], i2[1]]).astype(np.float32)
    both, every = est["both"](j1, j2), est["all"](j1, j2)
    np.testing.assert_allclose(every.flow[1], both.flow[1], atol=1e-4)
    assert every.start[1] == both.start[1]
    return j1, j2, every


def test_all_adds_a_shift_start_only_where_the_shift_is_large(runs):
    """start="all" is "both" where the frames' dominant shift is small (the runs' pairs move 5-7
    px); in a batch whose first pair moves 40 px (over 256 / 20) the first pair also gets a solve
    from that shift as a constant flow (by hand: `global_shift`, `warm_start`) and the pick
    chooses among three (the homography of a translation is the shift: not offered); the second
    pair's flow stays "both"'s."""
    _, _, est, out = runs
    np.testing.assert_allclose(out["all"].flow, out["both"].flow, atol=1e-6)
    assert out["all"].start.tolist() == out["both"].start.tolist()
    j1, j2, every = _batch_with(_textured_pair(256, 320, (40, -6), seed=3), runs)
    dx, dy, _ = global_shift(j1[0], j2[0])
    assert abs(dx - 40) < 0.5 and abs(dy + 6) < 0.5
    const = np.broadcast_to(np.array([dx, dy], np.float32), (2, 256, 320, 2))
    shifted = est["zero"](j1, j2, flow_init=warm_start(const, (256, 320))).flow[0]
    cands = [est["zero"](j1, j2).flow[0], est["coarse"](j1, j2).flow[0], shifted]
    k = pick_flow(j1[0], j2[0], cands)
    assert every.start[0] == ("zero", "coarse", "shift")[k]
    np.testing.assert_allclose(every.flow[0], cands[k], atol=1e-3)


def test_all_adds_a_homography_start_only_where_one_is_large(runs):
    """In a batch whose first pair zooms by 1.25x and turns 6 degrees (no large shift), that
    pair gets, besides "both"'s starts, a solve from its homography's flow (by hand:
    `global_homography`, `homography_flow`, `warm_start`) and the pick chooses among the starts
    offered; the second pair's flow stays "both"'s."""
    est = runs[2]
    j1, j2, camera = _batch_with(_warped_pair(256, 320, _camera(320, 256, zoom=1.25, degrees=6.0), seed=6), runs)
    fit = global_homography(j1[0], j2[0])
    hflow = homography_flow(fit.hmat, (256, 320))
    dx, dy, _ = global_shift(j1[0], j2[0])
    assert homography_start_wanted(hflow, fit.inliers, fit.matches, (dx, dy), (256, 320), fit.second)
    names = ["zero", "coarse"]
    cands = [est["zero"](j1, j2).flow[0], est["coarse"](j1, j2).flow[0]]
    if shift_start_wanted((dx, dy), (256, 320)):      # a spurious peak of the zoom: offered too
        const = np.broadcast_to(np.array([dx, dy], np.float32), (2, 256, 320, 2))
        names.append("shift")
        cands.append(est["zero"](j1, j2, flow_init=warm_start(const, (256, 320))).flow[0])
    init = warm_start(np.stack([hflow, np.zeros_like(hflow)]), (256, 320))
    names.append("homography")
    cands.append(est["zero"](j1, j2, flow_init=init).flow[0])
    k = pick_flow(j1[0], j2[0], cands)
    assert camera.start[0] == names[k]
    np.testing.assert_allclose(camera.flow[0], cands[k], atol=1e-3)


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
        assert est.start[i] == ("zero", "coarse")[k]
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
