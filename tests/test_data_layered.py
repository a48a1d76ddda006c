"""The rendered layered dataset: exact flow, determinism, held-out photos, displacement
statistics, the grain loader's exact resume, the video renderer, and benchmarks/pretrained.py
end to end."""
import json
import os

import cv2
import numpy as np
import pytest
from training_helpers import benchmark_module

from deq_flow_jax.data import layered, make_eval_source, make_train_loader, photos, warp_backward
from deq_flow_jax.data.layered import VIDEO_CONFIG, LayeredConfig, render, render_photo_pair, render_sequence
from deq_flow_jax.data.layered_source import sequence_items
from deq_flow_jax.data.mixtures import stage_components
from deq_flow_jax.evaluate.starts import homography_flow

EXACT = LayeredConfig(photometric=False)
SMALL = dict(height=96, width=128)


def _warp_errors(ex, flow=None):
    """Mean |warp(frame 2, flow) - frame 1| (grey levels) on non-occluded pixels 3 px away
    from any layer boundary, and the same for zero flow."""
    lab = ex["layers"].astype(np.float32)
    edge = cv2.Laplacian(lab, cv2.CV_32F) != 0
    near_edge = cv2.dilate(edge.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    keep = (ex["occlusion"] == 0) & ~near_edge
    assert keep.mean() > 0.3
    img1 = ex["image1"].astype(np.float32)
    err = np.abs(warp_backward(ex["image2"], ex["flow"] if flow is None else flow) - img1).mean(-1)
    zero = np.abs(ex["image2"].astype(np.float32) - img1).mean(-1)
    return err[keep], zero[keep]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_flow_is_exact(index):
    ex = render(5, index, EXACT)
    err, zero = _warp_errors(ex)
    # Bilinear resampling of the (photo) textures is the only error source: about one grey
    # level, against tens for zero flow.
    assert err.mean() < 2.5 and np.median(err) < 1.5, (err.mean(), np.median(err))
    assert err.mean() < 0.2 * zero.mean(), (err.mean(), zero.mean())
    # The flow sits at the centre of a sharp minimum of the warping error: a quarter pixel
    # off in x or y is much worse, equally so on both sides (a bias of a few hundredths of
    # a pixel, e.g. a pixel-centre convention slip, would break the symmetry).
    for d in ([0.25, 0], [0, 0.25]):
        plus, _ = _warp_errors(ex, ex["flow"] + np.float32(d))
        minus, _ = _warp_errors(ex, ex["flow"] - np.float32(d))
        assert min(plus.mean(), minus.mean()) > 1.3 * err.mean(), (d, plus.mean(), err.mean())
        assert abs(plus.mean() - minus.mean()) < 0.05 * err.mean(), (d, plus.mean(), minus.mean())
    off, _ = _warp_errors(ex, ex["flow"] + np.float32([0.5, 0.0]))
    assert off.mean() > 1.8 * err.mean(), (off.mean(), err.mean())
    assert ex["valid"].min() == 1.0 and ex["flow"].dtype == np.float32
    assert 0.0 < ex["occlusion"].mean() < 0.6
    assert np.all(ex["occlusion"][ex["out_of_frame"] == 1] == 1)
    assert len(np.unique(ex["layers"])) >= 3            # background + visible objects


def test_photo_pair_flow_is_exact():
    for index in range(3):
        ex = render_photo_pair(0, index, EXACT)
        assert set(ex["photos"]) <= set(photos.photo_names("validation"))
        assert np.all(ex["layers"] == 0)
        keep = ex["occlusion"] == 0
        err = np.abs(warp_backward(ex["image2"], ex["flow"]) - ex["image1"]).mean(-1)[keep]
        assert err.mean() < 1.5, (index, err.mean())


def test_large_warp_pairs_have_exact_flow_of_their_homography():
    """large_warps: each held-out photograph under each of layered.LARGE_WARPS; the flow is the
    homography's displacement, warping frame 2 by it reproduces frame 1 where visible, and the
    same (seed, index) gives the same pair."""
    n = len(layered.LARGE_WARPS)
    names = photos.photo_names("validation")
    h, w = EXACT.height, EXACT.width
    for index in (0, 2, n + 3, 3 * n - 1):       # zoom_in, roll, forward, pan_zoom
        ex = layered.render_warp_pair(0, index, EXACT)
        name, warp = names[index // n], layered.LARGE_WARPS[index % n]
        assert ex["photos"] == (name,) and ex["meta"]["warp"] == warp
        want = homography_flow(layered.large_warp(warp, h, w), (h, w))
        np.testing.assert_allclose(ex["flow"], want, atol=1e-3)
        speed = np.linalg.norm(ex["flow"], axis=-1).mean()
        assert 30 < speed < 130, (warp, speed)
        keep = ex["occlusion"] == 0
        err = np.abs(warp_backward(ex["image2"], ex["flow"]) - ex["image1"]).mean(-1)[keep]
        zero = np.abs(ex["image2"].astype(np.float32) - ex["image1"]).mean(-1)[keep]
        assert err.mean() < 1.5 and err.mean() < 0.1 * zero.mean(), (warp, err.mean(), zero.mean())
    a, b = layered.render_warp_pair(3, 5), layered.render_warp_pair(3, 5)
    for k in ("image1", "image2", "flow", "occlusion"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["image1"], layered.render_warp_pair(4, 5)["image1"])
    with pytest.raises(ValueError, match="large_warps has 21 pairs; got index 21"):
        layered.render_warp_pair(0, 3 * n)
    with pytest.raises(ValueError, match="large warp must be one of"):
        layered.large_warp("pan", h, w)


def test_camera_only_scenes():
    """camera_only_prob: some train scenes are the background alone, with exact flow; the
    other scenes, the validation split and configs without it keep their random stream."""
    cam = LayeredConfig(photometric=False, camera_only_prob=1.0, **SMALL)
    for index in range(2):
        ex = render(0, index, cam)
        assert np.all(ex["layers"] == 0)
        keep = ex["occlusion"] == 0
        err = np.abs(warp_backward(ex["image2"], ex["flow"]) - ex["image1"]).mean(-1)[keep]
        assert err.mean() < 2.5, (index, err.mean())
    base = LayeredConfig(**SMALL)
    np.testing.assert_array_equal(render(0, 3, base.replace(camera_only_prob=0.0))["image1"],
                                  render(0, 3, base)["image1"])
    np.testing.assert_array_equal(render(0, 3, cam, split="validation")["flow"],
                                  render(0, 3, cam.replace(camera_only_prob=0.0), split="validation")["flow"])
    mixed = base.replace(camera_only_prob=0.5)
    n_cam = sum(int(render(1, i, mixed)["layers"].max() == 0) for i in range(24))
    assert 4 <= n_cam <= 20, n_cam
    with pytest.raises(ValueError, match="camera_only_prob"):
        LayeredConfig(camera_only_prob=1.5)


def _rotation_and_log_zoom(ex, mask):
    """(degrees, log zoom) of the affine map fitted to the flow of `ex` over `mask`."""
    ys, xs = np.nonzero(mask)
    src = np.stack([xs, ys, np.ones_like(xs)], 1).astype(np.float64)
    dst = src[:, :2] + ex["flow"][ys, xs].astype(np.float64)
    m = np.linalg.lstsq(src, dst, rcond=None)[0][:2].T
    return np.degrees(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])), 0.5 * np.log(np.linalg.det(m))


def test_bg_motion_scale_widens_the_backgrounds_rotation_and_zoom_in_training_only():
    """bg_motion_scale multiplies the train background's (and camera's) rotation and zoom,
    from the same draws; validation renders do not change."""
    for kind in (dict(camera_only_prob=1.0), dict(parallax_prob=1.0, mover_prob=0.0)):
        cfg = LayeredConfig(photometric=False, perspective_prob=0.0, bg_still_prob=0.0, **kind, **SMALL)
        for index in range(3):
            one, two = render(0, index, cfg), render(0, index, cfg.replace(bg_motion_scale=2.0))
            assert one["photos"] == two["photos"]                 # the same draws
            bg = (one["layers"] == 0) & (two["layers"] == 0) & (one["occlusion"] == 0) & (two["occlusion"] == 0)
            rot1, zoom1 = _rotation_and_log_zoom(one, bg)
            rot2, zoom2 = _rotation_and_log_zoom(two, bg)
            np.testing.assert_allclose([rot2, zoom2], [2 * rot1, 2 * zoom1], rtol=1e-3, atol=1e-5)
            assert abs(rot1) > 1e-3 or abs(zoom1) > 1e-4           # something to scale
    base = LayeredConfig(**SMALL)
    np.testing.assert_array_equal(render(0, 2, base.replace(bg_motion_scale=1.5), split="validation")["image2"],
                                  render(0, 2, base, split="validation")["image2"])
    np.testing.assert_array_equal(render(0, 2, base.replace(bg_motion_scale=1.0))["image2"],
                                  render(0, 2, base)["image2"])
    for bad in (0.0, -1.0, 5.0):
        with pytest.raises(ValueError, match="bg_motion_scale"):
            LayeredConfig(bg_motion_scale=bad)


def test_bg_motion_prob_mixes_the_two_laws_scene_by_scene():
    """bg_motion_prob < 1: each train scene is exactly the scene at scale 1 or the scaled one,
    both occur, and the share follows the probability; 1 is the plain scale."""
    cfg = LayeredConfig(camera_only_prob=1.0, bg_still_prob=0.0, **SMALL)
    wide, mixed = cfg.replace(bg_motion_scale=2.0), cfg.replace(bg_motion_scale=2.0, bg_motion_prob=0.5)
    picks = []
    for index in range(8):
        got, one, two = (render(0, index, c)["image2"] for c in (mixed, cfg, wide))
        assert not np.array_equal(one, two)
        assert np.array_equal(got, one) or np.array_equal(got, two)
        picks.append(np.array_equal(got, two))
    assert 0 < sum(picks) < len(picks)
    assert all(layered._motion_law(cfg.replace(bg_motion_scale=2.0, bg_motion_prob=p), [0, 0, i], True).bg_rot
               == (8.0 if p == 1.0 else 4.0) for p in (0.0, 1.0) for i in range(4))
    quarter = mixed.replace(bg_motion_prob=0.25)
    shares = [layered._motion_law(quarter, [0, 0, i], True).bg_rot == 8.0 for i in range(400)]
    assert 0.18 < np.mean(shares) < 0.32
    assert layered._motion_law(mixed, [0, 1, 3], False) is mixed                  # validation: never
    with pytest.raises(ValueError, match="bg_motion_prob"):
        LayeredConfig(bg_motion_prob=1.5)


def test_parallax_scenes_are_one_camera_seeing_depth():
    """parallax_prob: a camera translating past a static scene. With rotation, forward motion
    and independent movers switched off, every pixel's flow is the camera translation times
    the inverse depth of the layer it shows: one direction, larger for nearer (front) layers,
    at least the background's; the flow stays exact; other configs keep their stream."""
    still = dict(bg_rot=0.0, bg_zoom=0.0, bg_still_prob=0.0, mover_prob=0.0, photometric=False)
    par = LayeredConfig(parallax_prob=1.0, min_objects=6, max_objects=6, **still, **SMALL)
    for index in range(3):
        ex = render(2, index, par)
        flow, lab = ex["flow"], ex["layers"]
        bg = flow[lab == 0]
        t = bg.mean(0)
        np.testing.assert_allclose(bg, np.broadcast_to(t, bg.shape), atol=1e-3)   # one translation
        ratio = flow @ t / (t @ t)                           # inverse depth seen at each pixel
        np.testing.assert_allclose(flow, ratio[..., None] * t, atol=1e-3 * (1 + np.abs(t).max()))
        assert ratio.min() > 1 - 1e-4 and ratio.max() <= par.max_parallax + 1e-4
        per_layer = [ratio[lab == k].mean() for k in np.unique(lab)]
        assert np.all(np.diff(per_layer) > 0), per_layer     # layer order = depth order
        keep = ex["occlusion"] == 0
        err = np.abs(warp_backward(ex["image2"], flow) - ex["image1"]).mean(-1)[keep]
        assert err.mean() < 2.5, (index, err.mean())
    base = LayeredConfig(**SMALL)
    for split in ("train", "validation"):
        np.testing.assert_array_equal(render(0, 3, base.replace(parallax_prob=0.0), split)["flow"],
                                      render(0, 3, base, split)["flow"])
    np.testing.assert_array_equal(render(0, 3, par, "validation")["flow"],
                                  render(0, 3, par.replace(parallax_prob=0.0), "validation")["flow"])
    for bad in (dict(parallax_prob=-0.1), dict(mover_prob=2.0), dict(max_parallax=0.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LayeredConfig(**bad)


def test_ground_plane_scenes_are_a_slanted_plane_seen_by_the_camera():
    """ground_prob: the background of camera-only and parallax scenes is a slanted plane.
    With rotation and forward motion off its flow is t * rho(x): one direction, with an
    inverse depth affine in x that changes across the frame by 1.5x or more (a floor's
    steady growth, which no fronto-parallel layer has); the flow stays exact; the validation
    split and configs without it keep their random stream."""
    still = dict(bg_rot=0.0, bg_zoom=0.0, bg_still_prob=0.0, photometric=False)
    for scene in (dict(camera_only_prob=1.0), dict(parallax_prob=1.0, mover_prob=0.0)):
        cfg = LayeredConfig(ground_prob=1.0, **scene, **still, **SMALL)
        for index in range(3):
            ex = render(4, index, cfg)
            flow, bg = ex["flow"], ex["layers"] == 0
            t = flow[bg].mean(0)
            rho = flow @ t / (t @ t)
            np.testing.assert_allclose(flow[bg], rho[bg][:, None] * t, atol=2e-3 * (1 + np.abs(t).max()))
            ys, xs = np.nonzero(bg)
            design = np.stack([xs, ys, np.ones_like(xs)], -1).astype(np.float64)
            coef, *_ = np.linalg.lstsq(design, rho[bg], rcond=None)
            np.testing.assert_allclose(design @ coef, rho[bg], atol=1e-3 * np.abs(rho[bg]).max())
            corners = np.array([[0, 0, 1], [127, 0, 1], [0, 95, 1], [127, 95, 1]]) @ coef
            assert corners.max() / corners.min() > 1.5 - 1e-3, corners
            keep = ex["occlusion"] == 0
            err = np.abs(warp_backward(ex["image2"], flow) - ex["image1"]).mean(-1)[keep]
            assert err.mean() < 2.5, (index, err.mean())
    par = LayeredConfig(parallax_prob=0.5, camera_only_prob=0.3, **SMALL)
    np.testing.assert_array_equal(render(0, 3, par.replace(ground_prob=1.0), "validation")["flow"],
                                  render(0, 3, par, "validation")["flow"])
    ground = [render(1, i, par.replace(ground_prob=1.0))["flow"] for i in range(6)]
    plain = [render(1, i, par)["flow"] for i in range(6)]
    assert any(not np.array_equal(a, b) for a, b in zip(ground, plain))
    for bad in (dict(ground_prob=1.5), dict(ground_rho=(0.5, 0.2)), dict(ground_rho=(0.0, 1.0))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LayeredConfig(**bad)


def test_flat_surface_layers_are_nearly_textureless_and_keep_exact_flow():
    """flat_prob: train layers may be nearly textureless surfaces (sky, walls); their interior
    has no more than a grey level or two of local contrast, the flow stays exact, a
    camera-only scene never shows a flat frame alone, and the validation split and configs
    without it keep their random stream."""
    cfg = LayeredConfig(flat_prob=1.0, photometric=False, **SMALL)
    moved = 0
    for index in range(4):
        ex = render(2, index, cfg)
        assert ex["photos"] == ()                       # every layer is a flat surface
        lab = ex["layers"].astype(np.float32)
        edge = cv2.dilate((cv2.Laplacian(lab, cv2.CV_32F) != 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert np.percentile(layered.local_contrast(ex["image1"], 5)[~edge], 90) < 2.0, index
        err, _ = _warp_errors(ex)
        assert err.mean() < 1.0, (index, err.mean())
        moved += np.abs(ex["flow"]).max() > 5.0
    assert moved >= 2
    textured = LayeredConfig(photometric=False, **SMALL)
    cam = cfg.replace(camera_only_prob=1.0)
    for index in range(3):                              # textured like any background
        assert np.percentile(layered.local_contrast(render(2, index, cam)["image1"], 5), 90) > 2.0, index
    np.testing.assert_array_equal(render(0, 3, textured.replace(flat_prob=1.0), "validation")["image1"],
                                  render(0, 3, textured, "validation")["image1"])
    np.testing.assert_array_equal(render(0, 3, textured.replace(flat_prob=0.0))["image1"],
                                  render(0, 3, textured)["image1"])
    with pytest.raises(ValueError, match="flat_prob"):
        LayeredConfig(flat_prob=-0.1)


def _assert_flat_with_exact_flow(ex, index):
    """A scene of flat layers: under 3 grey levels of 5x5 local contrast (90th percentile) 3 px
    or more away from any layer edge, and frame 2 warped by the flow matches frame 1."""
    lab = ex["layers"].astype(np.float32)
    edge = cv2.dilate((cv2.Laplacian(lab, cv2.CV_32F) != 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert np.percentile(layered.local_contrast(ex["image1"], 5)[~edge], 90) < 3.0, index
    err, _ = _warp_errors(ex)
    assert err.mean() < 1.0, (index, err.mean())


def test_flat_layers_cut_from_smooth_parts_of_training_photographs():
    """flat_photo_prob: flat layers may be smooth windows of the training photographs (real flat
    surfaces); each window found is smooth and unclipped, the frames stay flat away from layer
    edges, only training photographs with smooth windows are used, the flow stays exact, and
    flat_photo_prob 0 and the validation split keep their random stream."""
    train = set(photos.photo_names("train"))
    with_windows = {n for n in train if len(layered.smooth_windows(n, layered.SMOOTH_SIDES[0]))}
    assert {"clock", "retina"} <= with_windows and "grass" not in with_windows
    for name in ("clock", "astronaut"):
        img = photos.load_photo(name)
        rough = layered.local_contrast(img, 7) >= layered.SMOOTH_CONTRAST
        for side in layered.SMOOTH_SIDES[:2]:
            wins = layered.smooth_windows(name, side)
            for y, x in wins[:: max(1, len(wins) // 10)]:
                assert rough[y:y + side, x:x + side].mean() <= layered.SMOOTH_ROUGH
                assert 12 <= img[y:y + side, x:x + side].mean() <= 243
    cfg = LayeredConfig(flat_prob=1.0, flat_photo_prob=1.0, photometric=False, **SMALL)
    seen = set()
    for index in range(4):
        ex = render(2, index, cfg)
        assert ex["photos"] and set(ex["photos"]) <= with_windows, ex["photos"]
        seen |= set(ex["photos"])
        _assert_flat_with_exact_flow(ex, index)
    assert len(seen) >= 2
    drawn = cfg.replace(flat_photo_prob=0.0)
    assert render(2, 0, drawn)["photos"] == ()
    textured = LayeredConfig(photometric=False, **SMALL)
    np.testing.assert_array_equal(render(0, 3, textured.replace(flat_prob=0.2, flat_photo_prob=0.0))["image1"],
                                  render(0, 3, textured.replace(flat_prob=0.2))["image1"])
    np.testing.assert_array_equal(render(0, 3, cfg, "validation")["image1"],
                                  render(0, 3, textured, "validation")["image1"])
    with pytest.raises(ValueError, match="flat_photo_prob"):
        LayeredConfig(flat_photo_prob=1.5)


def test_flat_layers_low_passed_from_any_training_photograph():
    """flat_lowpass_prob: photographed flat layers may be low-passed windows of any training
    photograph, not only the four with smooth windows. Each such source is smooth (no 7x7
    neighbourhood past `SMOOTH_CONTRAST` but for a few compression blocks) yet not one colour,
    comes in every side up to the plane's, draws on photographs without smooth windows, keeps
    the flow exact, and flat_lowpass_prob leaves the validation split and scenes without
    photographed flats on their random stream."""
    bank = photos.photo_bank("train")
    rng = np.random.default_rng(5)
    names, sides = set(), set()
    for _ in range(60):
        used = []
        img, g, col = layered._lowpass_photo_source(rng, bank, (384, 512), used)
        side = img.shape[0]
        assert img.dtype == np.uint8 and img.shape == (side, side, 3) and side in layered.SMOOTH_SIDES
        np.testing.assert_allclose(np.diag(g), [512 / side, 384 / side, 1.0])
        assert col.shape == (3, 4) and len(used) == 1
        contrast = layered.local_contrast(img, 7)
        assert (contrast >= layered.SMOOTH_CONTRAST).mean() <= 0.02, (used, side)
        assert np.ptp(cv2.GaussianBlur(img.astype(np.float32), (0, 0), 4).mean(-1)) >= 1.0
        names |= set(used)
        sides.add(side)
    assert sides == set(layered.SMOOTH_SIDES)
    assert names & {"grass", "brick", "gravel"}, names       # no smooth window of their own
    small = layered._lowpass_photo_source(rng, bank, (40, 30), [])[0]
    assert small.shape[0] == layered.SMOOTH_SIDES[0]
    cfg = LayeredConfig(flat_prob=1.0, flat_photo_prob=1.0, flat_lowpass_prob=1.0, photometric=False,
                        **SMALL)
    with_windows = {n for n in photos.photo_names("train")
                    if len(layered.smooth_windows(n, layered.SMOOTH_SIDES[0]))}
    seen = set()
    for index in range(4):
        ex = render(2, index, cfg)
        seen |= set(ex["photos"])
        _assert_flat_with_exact_flow(ex, index)
    assert seen - with_windows, seen
    smooth_only = cfg.replace(flat_lowpass_prob=0.0)
    assert not np.array_equal(render(2, 0, cfg)["image1"], render(2, 0, smooth_only)["image1"])
    drawn = LayeredConfig(flat_prob=0.5, photometric=False, **SMALL)
    np.testing.assert_array_equal(render(0, 3, drawn.replace(flat_lowpass_prob=1.0))["image1"],
                                  render(0, 3, drawn)["image1"])
    np.testing.assert_array_equal(render(0, 3, cfg, "validation")["image1"],
                                  render(0, 3, smooth_only, "validation")["image1"])
    with pytest.raises(ValueError, match="flat_lowpass_prob"):
        LayeredConfig(flat_lowpass_prob=-0.5)


def test_opt_in_photographs_from_scikit_learn():
    """extra_photos: scikit-learn's two sample photographs join the train bank only when named.
    They load from the installed wheel as RGB (the sky and the out-of-focus background give
    smooth windows up to the largest side), serve as textures and photographed flats with exact
    flow, leave configs without them and the validation split on their random stream, and a
    wrong name, a bare string or a missing scikit-learn is one clear error."""
    assert set(photos.extra_names()) == {"china", "flower"} and photos.extra_names("validation") == ()
    assert not set(photos.extra_names()) & set(photos.photo_names("train"))
    assert set(photos.photo_names("train", ("flower",))) == set(photos.photo_names("train")) | {"flower"}
    for name in photos.extra_names():
        img = photos.load_photo(name)
        assert img.shape == (427, 640, 3) and img.dtype == np.uint8
        assert len(layered.smooth_windows(name, layered.SMOOTH_SIDES[-1])) >= 10, name
    sky = photos.load_photo("china")[:60, 400:640].reshape(-1, 3).mean(0)
    assert sky[2] > sky[0], sky                       # RGB order: the sky is bluer than red
    extras = LayeredConfig(flat_prob=1.0, flat_photo_prob=1.0, photometric=False,
                           extra_photos=["china", "flower"], **SMALL)
    assert extras.extra_photos == ("china", "flower")
    seen = set()
    for index in range(8):
        ex = render(2, index, extras)
        seen |= set(ex["photos"])
        if index < 2:
            _assert_flat_with_exact_flow(ex, index)
    assert seen & {"china", "flower"}, seen
    plain = extras.replace(extra_photos=())
    # without them the bank is the ten scikit-image photographs in their order: the same draws
    assert photos.photo_names("train") == ("astronaut", "chelsea", "hubble_deep_field", "retina",
                                           "immunohistochemistry", "brick", "grass", "gravel",
                                           "coins", "clock")
    assert [p.name for p in photos.photo_bank("train", ())] == list(photos.photo_names("train"))
    np.testing.assert_array_equal(render(0, 3, extras, "validation")["image1"],
                                  render(0, 3, plain, "validation")["image1"])
    for bad, match in ((("coffee",), "extra_photos: .*coffee"), ("china", "tuple of names")):
        with pytest.raises(ValueError, match=match):
            LayeredConfig(extra_photos=bad)


def test_opt_in_photograph_without_scikit_learn(monkeypatch):
    """A scikit-learn photograph with scikit-learn missing: one line that says what to install,
    raised when the config is made (not later in a data worker)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "sklearn" else real(n, *a))
    with pytest.raises(RuntimeError, match="pip install scikit-learn"):
        photos._sklearn_image("china")
    photos.load_photo.cache_clear()                   # the config loads them when it is made
    try:
        with pytest.raises(ValueError, match="extra_photos: .*pip install scikit-learn"):
            LayeredConfig(extra_photos=("flower",))
    finally:
        photos.load_photo.cache_clear()


def test_same_seed_and_index_give_identical_samples():
    a, b = render(3, 17), render(3, 17)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c, d = render(3, 18), render(4, 17)
    for other in (c, d):
        assert not np.array_equal(a["image1"], other["image1"])
        assert not np.array_equal(a["flow"], other["flow"])
    # Photometric changes touch the colours only, never the geometry.
    plain = render(3, 17, EXACT)
    np.testing.assert_array_equal(plain["flow"], a["flow"])
    assert not np.array_equal(plain["image2"], a["image2"])
    p, q = render_photo_pair(1, 2), render_photo_pair(1, 2)
    for k in p:
        np.testing.assert_array_equal(p[k], q[k])


def test_render_outputs_are_unchanged():
    """Golden values of `render` and `render_photo_pair` (photometric changes on), recorded
    before the video renderer was added: the random streams that existing checkpoints were
    trained on stay as they were. Image means allow a few one-level rounding flips."""
    cfg = LayeredConfig(height=64, width=96)
    golden = [
        (render(0, 0, cfg), ("astronaut", "brick", "chelsea", "clock", "coins", "hubble_deep_field"),
         82.07145, 76.23356, [[-0.6743116, -0.1895716], [-0.7623184, 0.6606753]], 10, 0.1100260),
        (render(0, 1, cfg, "validation"), ("camera", "coffee", "rocket"),
         134.40592, 131.64800, [[-1.2716389, 3.1025910], [-1.2227486, 5.0982246]], 5, 0.1443685),
        (render_photo_pair(0, 0, cfg), ("coffee",),
         165.84885, 147.07785, [[0.5324402, -0.6631013], [0.4196783, -0.5292032]], 0, 0.0120443),
    ]
    for ex, names, mean1, mean2, flow, top_layer, occluded in golden:
        assert ex["photos"] == names
        assert ex["image1"].mean() == pytest.approx(mean1, abs=0.01)
        assert ex["image2"].mean() == pytest.approx(mean2, abs=0.01)
        np.testing.assert_allclose([ex["flow"][10, 20], ex["flow"][40, 70]], flow, atol=1e-4)
        assert ex["layers"].max() == top_layer
        assert ex["occlusion"].mean() == pytest.approx(occluded, abs=1e-3)


def _sequence_pair(seq, t):
    return {"image1": seq["images"][t], "image2": seq["images"][t + 1], "flow": seq["flows"][t],
            "occlusion": seq["occlusion"][t], "layers": seq["layers"][t]}


@pytest.mark.parametrize("index", [0, 1])
def test_sequence_flow_is_exact(index):
    """Every consecutive pair of a video has exact flow, by the pair test's criteria. At full
    size (384x512, 5 frames: about a second): at 64x96 the motions shrink to about a pixel and
    bilinear resampling of the textures dominates the warping error. Train split: the held-out
    photographs have large flat regions where the quarter-pixel test is less symmetric, for
    pairs as for video."""
    seq = render_sequence(5, index, VIDEO_CONFIG.replace(photometric=False), frames=5, split="train")
    assert seq["images"].shape == (5, 384, 512, 3) and seq["images"].dtype == np.uint8
    assert seq["flows"].shape == (4, 384, 512, 2) and seq["flows"].dtype == np.float32
    assert seq["valid"].shape == seq["occlusion"].shape == seq["out_of_frame"].shape == (4, 384, 512)
    assert seq["layers"].shape == (5, 384, 512) and seq["valid"].min() == 1.0
    for t in range(4):
        ex = _sequence_pair(seq, t)
        err, zero = _warp_errors(ex)
        assert err.mean() < 2.5 and np.median(err) < 1.5, (t, err.mean(), np.median(err))
        assert err.mean() < 0.2 * zero.mean(), (t, err.mean(), zero.mean())
        for d in ([0.25, 0], [0, 0.25]):
            plus, _ = _warp_errors(ex, ex["flow"] + np.float32(d))
            minus, _ = _warp_errors(ex, ex["flow"] - np.float32(d))
            assert min(plus.mean(), minus.mean()) > 1.3 * err.mean(), (t, d, plus.mean(), err.mean())
            assert abs(plus.mean() - minus.mean()) < 0.05 * err.mean(), (t, d, plus.mean(), minus.mean())
        assert np.all(seq["occlusion"][t][seq["out_of_frame"][t] == 1] == 1)
    assert len(np.unique(seq["layers"][-1])) >= 3         # objects still in view at the end


def test_sequence_extends_the_pair_renderer(monkeypatch):
    """With the pairs' random stream, a 2-frame video is exactly `render`'s pair: the video
    renderer only adds frames (M_l^t), it does not change the scene or its geometry."""
    cfg = VIDEO_CONFIG.replace(photometric=False, **SMALL)
    monkeypatch.setitem(layered.SALT, "video_validation", layered.SALT["validation"])
    seq, pair = render_sequence(3, 4, cfg, frames=2), render(3, 4, cfg, "validation")
    np.testing.assert_array_equal(seq["images"][0], pair["image1"])
    np.testing.assert_array_equal(seq["images"][1], pair["image2"])
    for k in ("flow", "occlusion", "out_of_frame"):
        np.testing.assert_array_equal(seq[k + "s" if k == "flow" else k][0], pair[k])
    np.testing.assert_array_equal(seq["layers"][0], pair["layers"])


def test_sequence_determinism_prefix_and_photometric():
    cfg = VIDEO_CONFIG.replace(height=64, width=96)
    a, b = render_sequence(2, 7, cfg, frames=6), render_sequence(2, 7, cfg, frames=6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert set(a["photos"]) <= set(photos.photo_names("validation"))
    # Frames are drawn in order: a shorter video is a prefix of a longer one.
    short = render_sequence(2, 7, cfg, frames=3)
    np.testing.assert_array_equal(short["images"], a["images"][:3])
    np.testing.assert_array_equal(short["flows"], a["flows"][:2])
    # Another index, seed or split is another video; the video stream is not the pairs' one.
    for other in (render_sequence(2, 8, cfg, frames=2), render_sequence(3, 7, cfg, frames=2),
                  render_sequence(2, 7, cfg, frames=2, split="train")):
        assert not np.array_equal(other["images"][0], a["images"][0])
    assert not np.array_equal(render(2, 7, cfg, "validation")["image1"], a["images"][0])
    # Photometric changes touch the colours only; each frame is changed once, so pairs share
    # their frames (image2 of pair t is image1 of pair t + 1) and lighting varies along the video.
    plain = render_sequence(2, 7, cfg.replace(photometric=False), frames=6)
    for k in ("flows", "occlusion", "layers"):
        np.testing.assert_array_equal(plain[k], a[k])
    assert not np.array_equal(plain["images"][3], a["images"][3])
    items = sequence_items(7, cfg, frames=6, seed=2)
    assert [it["meta"]["frame"] for it in items] == [0, 1, 2, 3, 4]
    assert len({it["meta"]["scene"] for it in items}) == 1
    for t, it in enumerate(items):
        np.testing.assert_array_equal(it["image1"], a["images"][t])
        np.testing.assert_array_equal(it["image2"], a["images"][t + 1])
        np.testing.assert_array_equal(it["flow"], a["flows"][t])
        assert it["valid"].shape == (64, 96) and it["occlusion"].shape == (64, 96)
    with pytest.raises(ValueError, match="at least 2 frames"):
        render_sequence(0, 0, cfg, frames=1)
    with pytest.raises(ValueError, match="split"):
        render_sequence(0, 0, cfg, split="test")


def test_video_config_keeps_scenes_in_view():
    """VIDEO_CONFIG's per-frame motions keep a 10-frame video meaningful: most objects are
    still visible at the last frame, few pixels leave the frame per step."""
    cfg = VIDEO_CONFIG.replace(photometric=False, height=96, width=128)
    first, last, out = [], [], []
    for index in range(4):
        seq = render_sequence(0, index, cfg, frames=10)
        first.append(len(np.unique(seq["layers"][0])))
        last.append(len(np.unique(seq["layers"][-1])))
        out.append(seq["out_of_frame"].mean())
    assert np.mean(last) >= 0.7 * np.mean(first), (first, last)
    assert np.mean(out) < 0.1, out


def test_held_out_photos_never_reach_training(monkeypatch):
    held_out = set(photos.photo_names("validation"))
    train = set(photos.photo_names("train"))
    assert held_out and train and not held_out & train
    assert not {n for n in train | held_out if "motorcycle" in n}
    real_load = photos.load_photo

    def guarded(name):
        if name in held_out or "motorcycle" in name:
            raise AssertionError(f"training rendered a held-out photograph: {name}")
        return real_load(name)

    monkeypatch.setattr(photos, "load_photo", guarded)
    src = make_eval_source("layered", "train", data_dir="unused", **SMALL)
    seen = set()
    for i in range(25):
        ex = src[i]
        seen |= set(ex["meta"]["photos"])
    assert seen and seen <= train
    monkeypatch.setattr(photos, "load_photo", real_load)
    val = make_eval_source("layered", "validation", data_dir="unused", **SMALL)
    val_seen = set().union(*(val[i]["meta"]["photos"] for i in range(10)))
    assert val_seen and val_seen <= held_out


def test_displacements_have_small_and_large_motions():
    mags = np.concatenate([np.linalg.norm(render(0, i)["flow"], axis=-1).ravel() for i in range(8)])
    assert (mags < 1.0).mean() > 0.05            # many sub-pixel motions ...
    assert (mags > 30.0).mean() > 0.01           # ... and a tail of large ones at 384x512
    assert 1.0 < np.median(mags) < 20.0


def test_sources_splits_and_errors():
    val = make_eval_source("layered", "val", data_dir="unused")
    assert len(val) == 64 and val.split == "validation" and not val.sparse
    ex = val[0]
    assert ex["image1"].shape == (384, 512, 3) and ex["image1"].dtype == np.uint8
    assert ex["flow"].shape == (384, 512, 2) and ex["valid"].shape == (384, 512)
    assert ex["meta"]["dataset"] == "layered" and ex["meta"]["index"] == 0
    assert len(make_eval_source("layered", "train", data_dir="unused")) == 1_000_000
    pairs = make_eval_source("photo-pairs", "validation", data_dir="unused", num_photo_pairs=5)
    assert len(pairs) == 5
    with pytest.raises(ValueError, match="no split 'train'"):
        make_eval_source("photo_pairs", "train", data_dir="unused")
    with pytest.raises(ValueError, match=r"unknown layered dataset parameters \['hieght'\]"):
        make_eval_source("layered", "train", data_dir="unused", hieght=96)
    with pytest.raises(ValueError, match="at least 32x32"):
        LayeredConfig(height=16)
    with pytest.raises(IndexError):
        val[64]
    (comp,) = stage_components("layered", (64, 96))
    assert comp.dataset == "layered" and comp.aug.crop_size == (64, 96) and not comp.aug.sparse


def test_train_loader_resumes_exactly(tmp_path):
    kw = dict(data_dir=tmp_path / "never_written", crop_size=(64, 96), global_batch_size=2, seed=3,
              layered=SMALL)
    it = iter(make_train_loader("layered", **kw))
    first = [next(it) for _ in range(3)]
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    resumed = iter(make_train_loader("layered", **kw))
    resumed.set_state(state)
    for a, b in zip(expected, [next(resumed) for _ in range(2)]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    b0 = first[0]
    assert b0["image1"].shape == (2, 64, 96, 3) and b0["flow"].shape == (2, 64, 96, 2)
    assert np.all(np.isfinite(b0["flow"])) and b0["valid"].mean() > 0.9
    assert not np.array_equal(first[0]["image1"], first[1]["image1"])
    assert not os.path.exists(tmp_path / "never_written")   # nothing prepared on disk


def test_motorcycle_pair_is_left_to_right_flow():
    ex = photos.motorcycle_pair()
    assert ex["image1"].shape == (500, 741, 3) and ex["flow"].shape == (500, 741, 2)
    assert np.all(ex["flow"][..., 1] == 0) and 0.5 < ex["valid"].mean() < 1.0
    keep = ex["valid"] == 1
    assert np.all(ex["flow"][..., 0][keep] < 0)
    err = np.abs(warp_backward(ex["image2"], ex["flow"]) - ex["image1"]).mean(-1)[keep].mean()
    zero = np.abs(ex["image2"].astype(np.float32) - ex["image1"]).mean(-1)[keep].mean()
    assert err < 0.5 * zero, (err, zero)


def _benchmark():
    return benchmark_module("pretrained")


def test_pretrained_benchmark_on_a_tiny_model(tmp_path, capsys):
    import jax

    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import ModelConfig, init_model

    cfg = ModelConfig.variant("tiny")
    ckpt = str(tmp_path / "tiny")
    checkpoints.save(ckpt, init_model(cfg, jax.random.PRNGKey(0), image_size=(16, 16)), cfg)
    bench = _benchmark()
    out = tmp_path / "res.json"
    argv = ["--checkpoint", ckpt, "--quick", "--size", "48", "64", "--sets", "layered", "photo_pairs",
            "--solver", "naive", "--max-steps", "2", "--panel", str(tmp_path / "panel.png"),
            "--out", str(out)]
    assert bench.main(argv) == 0
    from deq_flow_jax.io import read_image
    panel = read_image(str(tmp_path / "panel.png"))       # a row per set, 4 columns of 320x240
    assert panel.shape == (2 * bench.PANEL_HEIGHT + 4, 4 * 320 + 3 * 4, 3)
    report = json.loads(out.read_text())
    assert report["sets"] == {"layered": 4, "photo_pairs": 4}
    assert report["model"]["max_steps"] == 2 and report["model"]["solver"] == "naive"
    for set_name in ("layered", "photo_pairs"):
        rows = report["results"][set_name]
        assert set(rows) == {"model", "zero", "dis_medium", "farneback"}
        for row in rows.values():
            assert np.isfinite(row["epe"]) and 0 <= row["1px"] <= row["3px"] <= row["5px"] <= 100
            assert row["valid_pixels"] == 4 * 48 * 64
            # Pooled EPE = the pairs' EPEs weighted by valid pixels (all equal here).
            assert len(row["per_pair_epe"]) == 4
            assert row["epe"] == pytest.approx(np.mean(row["per_pair_epe"]), rel=1e-5)
    # A random model is no optical-flow estimator: DIS beats it on the photo pairs.
    assert report["results"]["photo_pairs"]["dis_medium"]["epe"] < \
        report["results"]["photo_pairs"]["model"]["epe"]
    assert set(report["seconds_per_pair"]) == {"model", "zero", "dis_medium", "farneback"}
    # Per-pair facts: the photographs, the mean motion and the flat fraction, recomputed here.
    from deq_flow_jax.data.layered_source import make_layered_source
    src = make_layered_source("photo_pairs", "validation", height=48, width=64)
    for i, info in enumerate(report["pairs"]["photo_pairs"]):
        ex = src[i]
        assert info["photos"] == ex["meta"]["photos"] and len(info["photos"]) == 1
        flat = (layered.local_contrast(ex["image1"], 7) < 3.0).mean()
        assert info["flat_fraction"] == pytest.approx(flat, abs=1e-6)
        assert info["mean_motion"] == pytest.approx(np.linalg.norm(ex["flow"], axis=-1).mean(), rel=1e-4)
    out_text = capsys.readouterr().out
    assert "flat pixels" not in out_text        # 48x64 frames: every pair textured, no split
    assert "| layered | model |" in out_text
    dis_wins = sum(a < b for a, b in zip(report["results"]["photo_pairs"]["model"]["per_pair_epe"],
                                         report["results"]["photo_pairs"]["dis_medium"]["per_pair_epe"]))
    assert f"| photo_pairs | dis_medium | {dis_wins} of 4 |" in out_text
    # Refusals: an existing output without --overwrite, an output inside the checkpoint.
    before = out.read_bytes()
    assert bench.main(argv) == 2 and out.read_bytes() == before
    assert bench.main(argv[:-2] + ["--out", os.path.join(ckpt, "res.json")]) == 2
    assert not os.path.exists(os.path.join(ckpt, "res.json"))
    assert "is inside the input" in capsys.readouterr().err
    assert bench.main(argv[:-4] + ["--panel", str(tmp_path / "p2.png"), "--out", str(tmp_path / "p2.png")]) == 2
    assert "the same file as --out" in capsys.readouterr().err and not (tmp_path / "p2.png").exists()
    # --overwrite replaces only files this script wrote: a user's JSON and a user's image (same
    # names as before, checked before any work) stay as they were.
    from deq_flow_jax.io import image_comment, write_image
    foreign_json, foreign_png = tmp_path / "mine.json", tmp_path / "mine.png"
    foreign_json.write_text('{"benchmark": "something else"}')
    write_image(str(foreign_png), np.zeros((8, 8, 3), np.uint8))
    keep = foreign_json.read_bytes(), foreign_png.read_bytes()
    for flag, path in (("--out", foreign_json), ("--panel", foreign_png)):
        swapped = [str(path) if a == str(out if flag == "--out" else tmp_path / "panel.png") else a
                   for a in argv]
        assert bench.main(swapped + ["--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "not written by deq-flow" in err and len(err.strip().splitlines()) == 1
    assert (foreign_json.read_bytes(), foreign_png.read_bytes()) == keep
    assert bench.main(argv[:-4] + ["--panel", str(tmp_path / "p.bmp")]) == 2
    assert ".png/.jpg/.jpeg" in capsys.readouterr().err
    # ... and its own outputs (the panel carries the script's comment) are replaced.
    assert image_comment(str(tmp_path / "panel.png")) == bench.PANEL_COMMENT
    assert bench.main(argv + ["--overwrite"]) == 0


def test_pretrained_benchmark_refined_and_plain_rows(tmp_path):
    """With --refine variational (or a checkpoint that refines by default) the model's row is
    the refined flow and `model_plain` the same estimates unrefined: the rows of a plain run;
    --refine fusion overrides the checkpoint's own setting."""
    import jax

    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import ModelConfig, init_model

    cfg = ModelConfig.variant("tiny")
    ckpt = str(tmp_path / "tiny")
    checkpoints.save(ckpt, init_model(cfg, jax.random.PRNGKey(0), image_size=(16, 16)), cfg,
                     inference={"refine": "variational"})
    bench = _benchmark()
    argv = ["--checkpoint", ckpt, "--quick", "--max-pairs", "2", "--size", "48", "64",
            "--sets", "photo_pairs", "--solver", "naive", "--max-steps", "2"]
    reports = {}
    for name, extra in (("default", []), ("plain", ["--refine", "none"]),
                        ("fusion", ["--refine", "fusion"])):
        out = tmp_path / f"{name}.json"
        assert bench.main(argv + extra + ["--out", str(out)]) == 0
        reports[name] = json.loads(out.read_text())
    refined, plain = reports["default"], reports["plain"]
    assert refined["model"]["refine"] == "variational" and plain["model"]["refine"] == "none"
    rows, plain_rows = refined["results"]["photo_pairs"], plain["results"]["photo_pairs"]
    assert set(rows) == {"model", "model_plain", "zero", "dis_medium", "farneback"}
    assert set(plain_rows) == {"model", "zero", "dis_medium", "farneback"}
    np.testing.assert_allclose(rows["model_plain"]["per_pair_epe"],
                               plain_rows["model"]["per_pair_epe"], rtol=1e-5)
    assert rows["model"]["per_pair_epe"] != rows["model_plain"]["per_pair_epe"]
    assert set(refined["seconds_per_pair"]) == set(rows)
    fused = reports["fusion"]
    assert fused["model"]["refine"] == "fusion"
    fused_rows = fused["results"]["photo_pairs"]
    np.testing.assert_allclose(fused_rows["model_plain"]["per_pair_epe"],
                               plain_rows["model"]["per_pair_epe"], rtol=1e-5)
    assert fused_rows["model"]["per_pair_epe"] != rows["model"]["per_pair_epe"]
    # --start both: the model's row comes from the full estimator (here frames too small for
    # the coarse start's pyramid, so the zero start, refined), model_plain stays the zero start
    out = tmp_path / "both.json"
    assert bench.main(argv + ["--start", "both", "--out", str(out)]) == 0
    both = json.loads(out.read_text())
    assert both["model"]["start"] == "both" and refined["model"]["start"] == "zero"
    assert both["model"]["starts"] == ["zero", "coarse"] and refined["model"]["starts"] == ["zero"]
    both_rows = both["results"]["photo_pairs"]
    np.testing.assert_allclose(both_rows["model"]["per_pair_epe"], rows["model"]["per_pair_epe"], rtol=1e-4)
    np.testing.assert_allclose(both_rows["model_plain"]["per_pair_epe"],
                               plain_rows["model"]["per_pair_epe"], rtol=1e-5)


def test_pretrained_benchmark_large_motions_set(tmp_path):
    """The large_motions set: the held-out photographs' windows shifted by photos.LARGE_SHIFTS,
    exact flow; zero flow's EPE over them is the mean shift length."""
    from deq_flow_jax.data.photos import LARGE_SHIFTS
    bench = _benchmark()
    out = tmp_path / "large.json"
    assert bench.main(["--quick", "--sets", "large_motions", "--size", "48", "64", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["sets"] == {"large_motions": len(LARGE_SHIFTS)}
    zero = rep["results"]["large_motions"]["zero"]["per_pair_epe"]
    np.testing.assert_allclose(zero, [np.hypot(*s) for s in LARGE_SHIFTS], rtol=1e-5)
    assert [p["mean_motion"] for p in rep["pairs"]["large_motions"]] == pytest.approx(zero, rel=1e-5)


def test_pretrained_benchmark_large_warps_set(tmp_path):
    """The large_warps set: --quick is the first photograph under every warp; zero flow's EPE
    per pair is the pair's mean motion."""
    bench = _benchmark()
    out = tmp_path / "warps.json"
    assert bench.main(["--quick", "--sets", "large_warps", "--size", "48", "64", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["sets"] == {"large_warps": len(layered.LARGE_WARPS)}
    zero = rep["results"]["large_warps"]["zero"]["per_pair_epe"]
    assert [p["mean_motion"] for p in rep["pairs"]["large_warps"]] == pytest.approx(zero, rel=1e-5)
    assert {tuple(p["photos"]) for p in rep["pairs"]["large_warps"]} == {photos.photo_names("validation")[:1]}
    assert rep["results"]["large_warps"]["dis_medium"]["epe"] < rep["results"]["large_warps"]["zero"]["epe"]


def test_pretrained_benchmark_splits_flat_and_textured_pairs():
    """The table's texture split: mean per-pair EPE per method over the flat pairs (flat
    fraction >= 0.5) and the textured ones, and the model's wins against DIS in each."""
    bench = _benchmark()
    row = lambda epes: {"epe": 0.0, "1px": 0, "3px": 0, "5px": 0, "pairs": 3, "per_pair_epe": epes}  # noqa: E731
    report = {"results": {"photo_pairs": {"model": row([1.0, 3.0, 0.5]), "dis_medium": row([2.0, 2.0, 0.4]),
                                          "zero": row([9.0, 9.0, 9.0])}},
              "pairs": {"photo_pairs": [{"flat_fraction": 0.9}, {"flat_fraction": 0.5},
                                        {"flat_fraction": 0.1}]},
              "seconds_per_pair": {}, "size": [48, 64]}
    text = bench.table(report)
    assert "| photo_pairs | flat (>= 50% flat pixels) | 2 | 2.000 | 2.000 | n/a | 9.000 | 1 of 2 |" in text
    assert "| photo_pairs | textured | 1 | 0.500 | 0.400 | n/a | 9.000 | 0 of 1 |" in text
    report["pairs"]["photo_pairs"][2]["flat_fraction"] = 0.7      # all flat: no split
    assert "flat pixels" not in bench.table(report)


def test_pretrained_benchmark_baselines_on_the_motorcycle_pair(tmp_path):
    bench = _benchmark()
    out = tmp_path / "base.json"
    assert bench.main(["--sets", "motorcycle", "--real-scale", "0.25", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["model"] is None and report["sets"] == {"motorcycle": 1}
    rows = report["results"]["motorcycle"]
    # Zero flow's EPE is the mean |gt| over valid pixels, computed here independently.
    moto = photos.motorcycle_pair()
    from deq_flow_jax.data.augment import resize_dense
    _, _, flow, valid = resize_dense(moto["image1"], moto["image2"], moto["flow"], moto["valid"],
                                     0.25, 0.25)
    expected = np.linalg.norm(flow, axis=-1)[valid >= 0.5].mean()
    assert rows["zero"]["epe"] == pytest.approx(expected, rel=1e-4)
    assert rows["zero"]["valid_pixels"] == int((valid >= 0.5).sum())
    assert rows["dis_medium"]["epe"] < 0.5 * rows["zero"]["epe"]
    # The visible / hidden split, from the occlusion map resized with the pair.
    occ = cv2.resize(moto["occlusion"], flow.shape[1::-1], interpolation=cv2.INTER_NEAREST) >= 0.5
    mag = np.linalg.norm(flow, axis=-1)
    assert rows["zero"]["epe_noc"] == pytest.approx(mag[(valid >= 0.5) & ~occ].mean(), rel=1e-4)
    assert rows["zero"]["epe_occ"] == pytest.approx(mag[(valid >= 0.5) & occ].mean(), rel=1e-4)
    assert 80 < rows["zero"]["noc_percent"] < 97
    # DIS matches visible pixels far better than hidden ones.
    assert rows["dis_medium"]["epe_noc"] < 0.5 * rows["dis_medium"]["epe_occ"]
    # Speed bins: at a quarter of the size the largest disparity is 15 px, so s40+ is empty.
    assert rows["zero"]["epe_s0-10"] == pytest.approx(mag[(valid >= 0.5) & (mag < 10)].mean(), rel=1e-4)
    assert rows["zero"]["epe_s40+"] is None


def test_pretrained_benchmark_pair_limits():
    bench = _benchmark()
    sets = bench.evaluation_sets(bench.parse_args(["--sets", "photo_pairs", "layered", "--max-pairs", "8"]))
    assert {k: n for k, (n, _) in sets.items()} == {"layered": 8, "photo_pairs": 8}
    sets = bench.evaluation_sets(bench.parse_args(["--sets", "photo_pairs", "--quick"]))
    assert sets["photo_pairs"][0] == 4
    with pytest.raises(SystemExit):
        bench.parse_args(["--max-pairs", "0"])


def test_pretrained_benchmark_against_a_baseline_json(tmp_path, capsys):
    """--baseline: this run's model against an earlier JSON of the script, set by set and pair
    by pair; a baseline of other pairs (size, pair count) or not of this script is one line."""
    import jax

    from deq_flow_jax import checkpoints
    from deq_flow_jax.model import ModelConfig, init_model

    cfg = ModelConfig.variant("tiny")
    ckpt = str(tmp_path / "tiny")
    checkpoints.save(ckpt, init_model(cfg, jax.random.PRNGKey(0), image_size=(16, 16)), cfg)
    bench = _benchmark()
    argv = ["--checkpoint", ckpt, "--quick", "--size", "48", "64", "--sets", "photo_pairs",
            "--solver", "naive", "--max-steps", "2"]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert bench.main(argv + ["--out", str(first)]) == 0
    assert bench.main(argv + ["--out", str(second), "--baseline", str(first)]) == 0
    comp = json.loads(second.read_text())["baseline"]
    row = comp["sets"]["photo_pairs"]["model"]
    assert row["epe"] == row["baseline_epe"] and (row["pairs_below"], row["pairs"]) == (0, 4)
    assert (comp["model_epe_below_on"], comp["model_sets"]) == (0, 1)
    assert "model's EPE below the baseline's on 0 of 1 sets" in capsys.readouterr().out
    # A worse baseline (every pair 1 px more): this run is below it on every pair and set.
    worse = json.loads(first.read_text())
    base_row = worse["results"]["photo_pairs"]["model"]
    base_row["per_pair_epe"] = [e + 1.0 for e in base_row["per_pair_epe"]]
    base_row["epe"] += 1.0
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    assert bench.main(argv + ["--baseline", str(tmp_path / "worse.json")]) == 0
    out = capsys.readouterr().out
    assert "| photo_pairs | model |" in out and "| 4 of 4 |" in out and "on 1 of 1 sets" in out
    # Other pairs, or no JSON of this script: one line, before any work, nothing written.
    (tmp_path / "other.json").write_text('{"benchmark": "solvers"}')
    (tmp_path / "text.json").write_text("not json")
    for extra, needle in ((["--size", "48", "80"], "its size is [48, 64]"),
                          (["--max-pairs", "2"], "it has 4 photo_pairs pairs, this run 2"),
                          (["--baseline", str(tmp_path / "other.json")], "not a JSON written by"),
                          (["--baseline", str(tmp_path / "text.json")], "cannot read it as JSON")):
        args = argv + ["--baseline", str(first)] + extra + ["--out", str(tmp_path / "c.json")]
        assert bench.main(args) == 2, extra
        err = capsys.readouterr().err
        assert needle in err and "--baseline" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "c.json").exists()
    # The baseline is an input: never the output, even with --overwrite.
    before = first.read_bytes()
    assert bench.main(argv + ["--baseline", str(first), "--out", str(first), "--overwrite"]) == 2
    assert "--baseline" in capsys.readouterr().err and first.read_bytes() == before


def test_pretrained_benchmark_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert _benchmark().main(["--checkpoint", str(tmp_path / "none"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_translation_pair_is_exact():
    """Frame 2 at p + shift shows frame 1 at p, bit for bit; the pixels whose p + shift leaves
    the frame, and only those, are marked out of frame (and occluded); the flow is the shift."""
    h, w = 40, 56
    for name, (dx, dy) in (("coffee", (0, 0)), ("rocket", (4, 0)), ("camera", (-32, 0)),
                           ("coffee", (5, -7))):
        ex = photos.translation_pair(name, (dx, dy), (h, w))
        assert ex["image1"].shape == ex["image2"].shape == (h, w, 3)
        assert np.all(ex["flow"] == np.array([dx, dy], np.float32)) and np.all(ex["valid"] == 1)
        ys, xs = np.mgrid[0:h, 0:w]
        inside = (xs + dx >= 0) & (xs + dx < w) & (ys + dy >= 0) & (ys + dy < h)
        assert np.array_equal(ex["out_of_frame"] == 0, inside) and np.array_equal(ex["occlusion"], ex["out_of_frame"])
        assert np.array_equal(ex["image2"][ys[inside] + dy, xs[inside] + dx], ex["image1"][inside])
        if (dx, dy) != (0, 0):      # a real shift: the frames differ
            assert np.abs(ex["image2"].astype(int) - ex["image1"]).mean() > 1.0
        assert ex["meta"]["photos"] == [name] and ex["meta"]["shift"] == [dx, dy]
    # A photograph smaller than the frames plus the shift (camera is 512x512) is enlarged first;
    # the pair stays exact.
    ex = photos.translation_pair("camera", (-32, 0), (384, 512))
    assert np.array_equal(ex["image2"][:, :-32], ex["image1"][:, 32:])
    with pytest.raises(ValueError, match="not a bank photograph"):
        photos.translation_pair("motorcycle_left", (1, 0))


def test_pretrained_benchmark_translations_set(tmp_path):
    """The translations set: 3 held-out photographs x 5 shifts, zero flow's EPE is each pair's
    |shift| (every pixel valid), DIS is exact on the unshifted pair."""
    bench = _benchmark()
    out = tmp_path / "t.json"
    assert bench.main(["--sets", "translations", "--size", "64", "96", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    shifts = photos.TRANSLATION_SHIFTS
    assert report["sets"] == {"translations": 3 * len(shifts)}
    rows = report["results"]["translations"]
    mags = [float(np.hypot(*s)) for s in shifts] * 3
    assert rows["zero"]["per_pair_epe"] == pytest.approx(mags, abs=1e-5)
    assert rows["zero"]["valid_pixels"] == 15 * 64 * 96
    assert rows["dis_medium"]["per_pair_epe"][0] < 0.05
    assert [p["photos"] for p in report["pairs"]["translations"]] == \
        [[n] for n in photos.photo_names("validation") for _ in shifts]
    quick = bench.evaluation_sets(bench.parse_args(["--sets", "translations", "--quick"]))
    assert quick["translations"][0] == len(shifts)


def test_stereo_occlusion_marks_what_a_nearer_surface_hides():
    """A near square (disparity 20) in front of a far wall (disparity 5), known everywhere:
    the wall pixels in the 15 px left of the square are hidden in the right image (the square
    moves 15 px further left, over them), the square and the rest stay visible, pixels whose
    match leaves the frame are out of frame, unknown pixels are neither."""
    h, w = 40, 100
    disp = np.full((h, w), 5.0)
    disp[10:30, 50:70] = 20.0
    disp[0, 0] = np.nan
    occ, out = photos.stereo_occlusion(disp)
    # Out of frame: round(x - d) < 0, i.e. x < 5 on the wall (x < 20 would be the square).
    assert np.all(out[1:, :5] == 1) and np.all(out[:, 5:] == 0) and out[0, 0] == 0 and occ[0, 0] == 0
    # Hidden: wall pixels x in [35, 50) land on right-image columns 30..44, which the square's
    # pixels (x - 20 = 30..49) cover; the band's edges are within the one-pixel tolerance.
    rows = slice(10, 30)
    assert np.all(occ[rows, 36:49] == 1) and np.all(occ[rows, 50:] == 0) and np.all(occ[rows, 5:33] == 0)
    assert np.all(occ[30:, 5:] == 0) and np.all(occ[:10, 5:] == 0)
    moto = photos.motorcycle_pair()
    keep = (moto["valid"] == 1) & (moto["occlusion"] == 0)
    assert 0.8 < keep.sum() / moto["valid"].sum() < 0.97
    # The visible pixels are the ones the right image explains: warping it by the flow
    # reproduces them much better than the occluded ones.
    err = np.abs(warp_backward(moto["image2"], moto["flow"]) - moto["image1"]).mean(-1)
    hidden = (moto["valid"] == 1) & (moto["occlusion"] == 1) & (moto["out_of_frame"] == 0)
    assert err[keep].mean() < 0.6 * err[hidden].mean(), (err[keep].mean(), err[hidden].mean())
