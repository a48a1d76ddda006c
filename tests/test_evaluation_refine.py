"""Refinement of a flow (deq_flow_jax.evaluate.refine: variational, and the fusion of several)
and how it is switched on: SolverSettings.refine, the model directory's "inference" entry, --refine."""
import json
import os

import cv2
import numpy as np
import pytest
from checkpoint_helpers import assert_bad_inference_entry_refused, tiny_variables

from deq_flow_jax import checkpoints, model_io
from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings
from deq_flow_jax.evaluate.refine import (
    DisFusion,
    FusedRefinement,
    VariationalRefinement,
    dis_flow,
    fuse_dis,
    fuse_flows,
    leaves_frame,
    refine_flow,
    refine_stages,
)

H, W, MARGIN = 128, 160, 12
SHIFT = np.array([2.3, -1.6], np.float32)          # sub-pixel, (x, y)


def _shifted_pair(y0=150, x0=180):
    """A crop of scikit-image's astronaut and the same crop of the photo moved by SHIFT
    (bilinear): frame 2 at x + SHIFT shows frame 1 at x, so the true flow is SHIFT."""
    skdata = pytest.importorskip("skimage.data")
    photo = np.asarray(skdata.astronaut(), np.float32)
    moved = cv2.warpAffine(photo, np.float32([[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]]),
                           (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR)
    return photo[y0:y0 + H, x0:x0 + W], moved[y0:y0 + H, x0:x0 + W]


def _median_epe(flow, truth=SHIFT):
    err = np.linalg.norm(flow - truth, axis=-1)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    return float(np.median(err))


OFF = SHIFT + np.array([0.6, -0.5], np.float32)      # a start 0.78 px off


def test_refinement_pulls_an_offset_flow_onto_the_true_shift():
    image1, image2 = _shifted_pair()
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    params = VariationalRefinement(fixed_point_iterations=30, sor_iterations=30)
    refined = refine_flow(image1, image2, start, "variational", params)
    assert refined.shape == (H, W, 2) and refined.dtype == np.float32
    assert _median_epe(start) == pytest.approx(0.781, abs=1e-3)
    assert _median_epe(refined) < 0.2, _median_epe(refined)
    # the pyramid is what pulls it in: the full resolution alone moves it far less
    alone = refine_flow(image1, image2, start, "variational", VariationalRefinement(
        levels=1, fixed_point_iterations=30, sor_iterations=30))
    assert _median_epe(alone) > 1.5 * _median_epe(refined)
    # deterministic, and the input is left as it was
    assert np.array_equal(refine_flow(image1, image2, start, "variational", params), refined)
    assert np.array_equal(start, np.broadcast_to(OFF, (H, W, 2)))


def test_exposure_change_is_normalised_away():
    """Frame 2 darker and with less contrast (as between two exposures): with the
    normalisation the refinement lands where it lands without any exposure change."""
    image1, image2 = _shifted_pair()
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    params = VariationalRefinement(fixed_point_iterations=30, sor_iterations=30)
    same = _median_epe(refine_flow(image1, image2, start, "variational", params))
    dim = image2 * 0.6 + 20
    normed = _median_epe(refine_flow(image1, dim, start, "variational", params))
    raw = _median_epe(refine_flow(image1, dim, start, "variational", VariationalRefinement(
        fixed_point_iterations=30, sor_iterations=30, normalize=False)))
    assert normed < same + 0.05, (normed, same)
    assert raw > normed + 0.05, (raw, normed)


def test_identical_frames_keep_zero_flow_and_none_is_a_copy():
    image1, _ = _shifted_pair()
    zero = np.zeros((H, W, 2), np.float32)
    assert np.max(np.abs(refine_flow(image1, image1, zero))) < 1e-3
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    out = refine_flow(image1, image1, start, method="none")
    assert np.array_equal(out, start) and out is not start


def test_grey_frames_and_non_finite_starts():
    image1, image2 = _shifted_pair()
    g1, g2 = (cv2.cvtColor(np.uint8(np.clip(i, 0, 255)), cv2.COLOR_RGB2GRAY) for i in (image1, image2))
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    assert _median_epe(refine_flow(g1, g2, start)) < _median_epe(start)
    start[5, 7] = np.nan
    start[40, 9] = np.inf
    assert np.all(np.isfinite(refine_flow(image1, image2, start)))


@pytest.mark.parametrize("bad, match", [
    (dict(flow=np.zeros((H, W + 1, 2), np.float32)), "do not fit"),
    (dict(image2=np.zeros((H, W - 8, 3), np.float32)), "do not fit"),
    (dict(method="bilateral"), "refine must be one of none, variational, fusion"),
    (dict(method="fusion", params=VariationalRefinement()), "takes FusedRefinement"),
    (dict(method="variational", params=FusedRefinement()), "takes VariationalRefinement"),
])
def test_bad_arguments_are_refused(bad, match):
    image1, image2 = _shifted_pair()
    kw = dict(image1=image1, image2=image2, flow=np.zeros((H, W, 2), np.float32))
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        refine_flow(**kw)


@pytest.mark.parametrize("field, value", [("levels", 0), ("sor_iterations", 0), ("alpha", -1.0),
                                          ("gamma", float("nan"))])
def test_bad_parameters_are_refused(field, value):
    with pytest.raises(ValueError, match=f"VariationalRefinement.{field}"):
        VariationalRefinement(**{field: value})


@pytest.mark.parametrize("field, value", [("candidates", ()), ("candidates", ("variational",)),
                                          ("window", 4), ("window", 0), ("margin", 0.9),
                                          ("brightness", float("inf"))])
def test_bad_fusion_parameters_are_refused(field, value):
    with pytest.raises(ValueError, match=f"FusedRefinement.{field}"):
        FusedRefinement(**{field: value})


def test_fusion_takes_the_candidate_that_matches_the_frames():
    """Of a flow 0.78 px off and the true shift, the matching cost picks the true shift
    wherever frame 2 is in view, whichever order they come in; a forced first candidate wins."""
    image1, image2 = _shifted_pair()
    off = np.broadcast_to(OFF, (H, W, 2)).copy()
    true = np.broadcast_to(SHIFT, (H, W, 2)).copy()
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    fused, choice = fuse_flows(image1, image2, [off, true])
    assert np.all(choice[inner] == 1) and np.allclose(fused[inner], SHIFT)
    fused, choice = fuse_flows(image1, image2, [true, off])
    assert np.all(choice[inner] == 0) and fused.dtype == np.float32
    keep = np.zeros((H, W), bool)
    keep[:, : W // 2] = True
    _, choice = fuse_flows(image1, image2, [off, true], keep_first=keep)
    assert np.all(choice[keep] == 0) and np.all(choice[inner][:, W // 2:] == 1)
    # equal costs: the first candidate; the margin keeps it against a slightly better one
    _, choice = fuse_flows(image1, image2, [true, true.copy()])
    assert not choice.any()
    nudged = true + np.float32(0.02)
    _, choice = fuse_flows(image1, image2, [nudged, true], margin=1.0)
    _, kept = fuse_flows(image1, image2, [nudged, true], margin=1e3)
    assert choice[inner].mean() > 0.5 and not kept.any()


def test_fuse_dis_takes_dis_only_near_the_flow():
    """fuse_dis on a flow 0.78 px off takes DIS's flow (close to the shift on this textured
    crop) wherever it matches better, pixel by pixel: every output pixel is the flow's or
    DIS's, and the error falls; a flow 6 px off (beyond max_change) comes back unchanged, as
    does any flow with max_change 0 or with every pixel leaving the frame."""
    image1, image2 = _shifted_pair()
    dis = dis_flow(image1, image2)
    assert dis.shape == (H, W, 2) and dis.dtype == np.float32
    assert _median_epe(dis) < 0.3, _median_epe(dis)
    off = np.broadcast_to(OFF, (H, W, 2)).copy()
    fused = fuse_dis(image1, image2, off)
    from_dis = np.all(fused == dis, axis=-1)
    assert np.all(from_dis | np.all(fused == off, axis=-1))
    assert from_dis[MARGIN:-MARGIN, MARGIN:-MARGIN].mean() > 0.5
    assert _median_epe(fused) < 0.5 * _median_epe(off)
    assert np.array_equal(off, np.broadcast_to(OFF, (H, W, 2)))       # the input is left as it was
    far = np.broadcast_to(SHIFT + np.float32([6, 0]), (H, W, 2)).copy()
    assert np.array_equal(fuse_dis(image1, image2, far), far)
    assert np.array_equal(fuse_dis(image1, image2, off, DisFusion(max_change=0.0)), off)
    gone = np.full((H, W, 2), 1000.0, np.float32)
    assert np.array_equal(fuse_dis(image1, image2, gone), gone)
    small = (slice(0, 8), slice(0, 100))                    # too small for DIS: kept as it is
    assert np.array_equal(fuse_dis(image1[small], image2[small], off[small]), off[small])
    assert refine_flow(image1[small], image2[small], off[small], "fusion+dis").shape == (8, 100, 2)


@pytest.mark.parametrize("field, value", [("window", 2), ("margin", 0.5), ("max_change", -1.0),
                                          ("brightness", float("nan"))])
def test_bad_dis_fusion_parameters_are_refused(field, value):
    with pytest.raises(ValueError, match=f"DisFusion.{field}"):
        DisFusion(**{field: value})


def test_fusion_dis_is_the_fusion_then_fuse_dis():
    image1, image2 = _shifted_pair()
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    fused = refine_flow(image1, image2, start, "fusion")
    np.testing.assert_array_equal(refine_flow(image1, image2, start, "fusion+dis"),
                                  fuse_dis(image1, image2, fused))
    assert np.array_equal(refine_flow(image1, image2, start), refine_flow(image1, image2, start, "fusion+dis"))
    assert refine_stages("fusion+dis") == ("fusion", True)
    assert [refine_stages(m) for m in ("none", "variational", "fusion")] == [
        ("none", False), ("variational", False), ("fusion", False)]
    with pytest.raises(ValueError, match="dis_flow: preset"):
        dis_flow(image1, image2, "slow")


def test_leaves_frame():
    flow = np.zeros((4, 5, 2), np.float32)
    flow[0, 0] = (-0.5, 0)          # left of the frame
    flow[3, 4] = (0, 0.25)          # below it
    flow[2, 2] = (2, 1)             # to (4, 3): the last pixel, still inside
    assert np.argwhere(leaves_frame(flow)).tolist() == [[0, 0], [3, 4]]


def test_fusion_refines_at_least_as_well_as_its_first_candidate():
    """refine_flow's method "fusion" pulls the offset start onto the shift as the
    variational refinement does, and keeps zero flow on identical frames."""
    image1, image2 = _shifted_pair()
    start = np.broadcast_to(OFF, (H, W, 2)).copy()
    fused = refine_flow(image1, image2, start, "fusion")
    single = refine_flow(image1, image2, start, "variational")
    assert fused.shape == (H, W, 2) and fused.dtype == np.float32
    assert _median_epe(fused) < 0.2 and _median_epe(fused) <= _median_epe(single) + 0.01
    assert not np.array_equal(fused, single)       # the other candidates are taken somewhere
    zero = np.zeros((H, W, 2), np.float32)
    assert np.max(np.abs(refine_flow(image1, image1, zero, "fusion"))) < 1e-3


def test_solver_settings_check_refine():
    assert SolverSettings().refine == "none"
    with pytest.raises(ValueError, match="refine must be one of"):
        SolverSettings(refine="median")


@pytest.fixture(scope="module")
def tiny():
    return tiny_variables()


@pytest.mark.parametrize("method", ["variational", "fusion", "fusion+dis"])
def test_estimator_refines_its_full_resolution_flow(tiny, method):
    """FlowEstimator with refine=METHOD returns refine_flow(METHOD) of its own plain flow; the
    low-resolution flow (the fixed point) is the model's either way."""
    variables, cfg = tiny
    image1, image2 = _shifted_pair()
    settings = SolverSettings(max_steps=4)
    plain = FlowEstimator(variables, cfg, settings)(image1, image2)
    refined = FlowEstimator(variables, cfg, SolverSettings(max_steps=4, refine=method))(
        image1, image2)
    np.testing.assert_allclose(refined.flow_lowres, plain.flow_lowres, atol=1e-6)
    np.testing.assert_allclose(refined.flow[0], refine_flow(image1, image2, plain.flow[0], method),
                               atol=1e-4)
    assert not np.allclose(refined.flow, plain.flow, atol=1e-2)


def test_inference_entry_round_trip_and_cli_default(tiny, tmp_path):
    """A model directory written with {"refine": "variational"} makes it the commands'
    default (`--refine none` overrides it); one without the entry runs plainly; a bad entry
    is one line naming model_config.json."""
    from deq_flow_jax.cli import infer, model_args

    variables, cfg = tiny
    with_refine = str(tmp_path / "refined")
    plain = str(tmp_path / "plain")
    checkpoints.save(with_refine, variables, cfg, inference={"refine": "variational"})
    checkpoints.save(plain, variables, cfg)
    assert checkpoints.inference(with_refine) == {"refine": "variational"}
    assert checkpoints.inference(plain) == {}
    with open(os.path.join(plain, model_io.CONFIG_NAME)) as f:
        assert "inference" not in json.load(f)

    parser = infer.build_parser()

    def settings(*argv):
        args = parser.parse_args(["a.png", "b.png", "--out", "o", *argv])
        return model_args.load_model_and_settings(args)[2]

    assert settings("--checkpoint", with_refine).refine == "variational"
    assert settings("--checkpoint", with_refine, "--refine", "none").refine == "none"
    assert settings("--checkpoint", plain).refine == "none"
    assert settings("--checkpoint", plain, "--refine", "variational").refine == "variational"
    assert settings("--checkpoint", plain, "--refine", "fusion").refine == "fusion"

    assert_bad_inference_entry_refused(tmp_path, variables, cfg, with_refine, "refine", "tv")


def test_export_has_no_refine_flag():
    """The exported function is the model alone: export takes no --refine."""
    from deq_flow_jax.cli import export
    from deq_flow_jax.cli.common import CliError
    with pytest.raises(CliError, match="--refine"):
        export.build_parser().parse_args(["--out", "m.bin", "--height", "16", "--width", "16",
                                          "--refine", "variational"])
