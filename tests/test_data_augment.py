"""Augmentation keeps images and flow consistent (checked by warping after augmenting)."""
import numpy as np
import pytest

from deq_flow_jax.data import AugConfig, SceneConfig, augment, generate_scene, warp_backward
from deq_flow_jax.data.augment import color_transform, resize_sparse_flow

NO_PHOTO = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, eraser_prob=0.0)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(11, SceneConfig(height=96, width=128, lighting=0.0))


def _warp_check(img1, img2, flow, valid, *, sparse=False):
    """Mean |img1 - img2(x + flow)| over valid pixels whose target lies inside the crop."""
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    x2, y2 = xx + flow[..., 0], yy + flow[..., 1]
    keep = (valid > 0.5) & (x2 >= 1) & (x2 <= w - 2) & (y2 >= 1) & (y2 <= h - 2)
    assert keep.sum() > (20 if sparse else 200)
    warped = warp_backward(img2, flow)
    err = np.abs(warped - img1.astype(np.float32)).mean(-1)[keep].mean()
    base = np.abs(img2.astype(np.float32) - img1).mean(-1)[keep].mean()
    return err, base


@pytest.mark.parametrize("seed,flips", [(0, (1.0, 0.0)), (1, (0.0, 1.0)), (2, (1.0, 1.0)), (3, (0.5, 0.1))])
def test_dense_augmentation_keeps_flow_consistent(scene, seed, flips):
    cfg = AugConfig(crop_size=(64, 96), min_scale=-0.2, max_scale=0.6, spatial_prob=1.0,
                    h_flip_prob=flips[0], v_flip_prob=flips[1], **NO_PHOTO)
    valid = 1.0 - scene["occlusions"][0]
    out = augment(np.random.default_rng(seed), scene["frames"][0], scene["frames"][1],
                  scene["flows"][0], valid, cfg)
    img1, img2, flow, val = out
    assert img1.shape == (64, 96, 3) and flow.shape == (64, 96, 2) and val.shape == (64, 96)
    err, base = _warp_check(img1, img2, flow, val)
    # Resampling costs a couple of grey levels; zero flow costs far more.
    assert err < 3.0 and err < 0.5 * base, (err, base)
    # Negating a component (what a forgotten sign flip would give) breaks the check.
    wrong = flow * np.float32([-1, 1])
    assert _warp_check(img1, img2, wrong, val)[0] > 2 * err


def test_sparse_augmentation_keeps_flow_consistent(scene):
    rng = np.random.default_rng(5)
    valid = ((rng.uniform(size=scene["flows"][0].shape[:2]) < 0.4) & (scene["occlusions"][0] == 0))
    cfg = AugConfig.sparse_default((64, 96), -0.2, 0.6, do_flip=True).replace(
        spatial_prob=1.0, h_flip_prob=1.0, **NO_PHOTO)
    img1, img2, flow, val = augment(rng, scene["frames"][0], scene["frames"][1], scene["flows"][0],
                                    valid.astype(np.float32), cfg)
    assert val.sum() > 0 and np.all(flow[val == 0] == 0)
    err, base = _warp_check(img1, img2, flow, val, sparse=True)
    assert err < 3.0 and err < 0.5 * base, (err, base)
    assert _warp_check(img1, img2, flow * np.float32([-1, 1]), val, sparse=True)[0] > 2 * err


def test_resize_sparse_flow_scatters_valid_points():
    flow = np.zeros((4, 6, 2), np.float32)
    valid = np.zeros((4, 6), np.float32)
    flow[1, 2] = (3.0, -1.0)
    valid[1, 2] = 1
    flow[3, 5] = (1.0, 1.0)
    valid[3, 5] = 1
    new_flow, new_valid = resize_sparse_flow(flow, valid, 2.0, 1.5)
    assert new_flow.shape == (6, 12, 2)
    # (x=2, y=1) -> (4, 1.5 -> 2): value scaled by (2, 1.5).
    np.testing.assert_allclose(new_flow[2, 4], (6.0, -1.5))
    assert new_valid.sum() == 2 and new_valid[2, 4] == 1 and new_valid[4, 10] == 1


def test_augmentation_is_deterministic_given_a_seed(scene):
    cfg = AugConfig(crop_size=(48, 64), eraser_bounds=(10, 20))
    args = (scene["frames"][0], scene["frames"][1], scene["flows"][0], np.ones((96, 128), np.float32))
    a = augment(np.random.default_rng(9), *args, cfg)
    b = augment(np.random.default_rng(9), *args, cfg)
    c = augment(np.random.default_rng(10), *args, cfg)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_symmetric_and_asymmetric_colour_jitter():
    rng = np.random.default_rng(0)
    img = rng.integers(30, 200, size=(16, 16, 3), dtype=np.uint8)
    bright = AugConfig(brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0)
    out1, out2 = color_transform(np.random.default_rng(1), img, img.copy(),
                                 bright.replace(asymmetric_color_prob=0.0))
    np.testing.assert_array_equal(out1, out2)  # one factor for both frames
    assert not np.array_equal(out1, img)
    out1, out2 = color_transform(np.random.default_rng(1), img, img.copy(),
                                 bright.replace(asymmetric_color_prob=1.0))
    assert not np.array_equal(out1, out2)  # independent factors
    # Brightness alone scales every pixel by one factor (up to rounding and clipping).
    ratio = out1.astype(np.float32)[img > 50] / img[img > 50]
    assert ratio.std() < 0.02
    # Hue rotation keeps the grey level of grey pixels.
    grey = np.full((4, 4, 3), 128, np.uint8)
    g1, _ = color_transform(np.random.default_rng(2), grey, grey,
                            AugConfig(brightness=0, contrast=0, saturation=0, hue=0.5))
    np.testing.assert_array_equal(g1, grey)
