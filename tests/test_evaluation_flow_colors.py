"""Colour wheel, error maps and panels (deq_flow_jax.evaluate.flow_colors)."""
import colorsys
import hashlib

import numpy as np
import pytest

from deq_flow_jax.evaluate import flow_colors


def _one(u, v, max_flow=1.0):
    return flow_colors.flow_to_color(np.array([[[u, v]]], np.float32), max_flow)[0, 0].tolist()


def test_colorwheel_ramps_by_hand():
    wheel = flow_colors.make_colorwheel()
    assert wheel.shape == (55, 3)
    assert wheel[0].tolist() == [255, 0, 0]            # start of red-yellow
    assert wheel[15].tolist() == [255, 255, 0]         # start of yellow-green
    assert wheel[21].tolist() == [0, 255, 0]           # start of green-cyan
    assert wheel[25].tolist() == [0, 255, 255]         # start of cyan-blue
    assert wheel[36].tolist() == [0, 0, 255]           # start of blue-magenta
    assert wheel[49].tolist() == [255, 0, 255]         # start of magenta-red
    assert wheel[1].tolist() == [255, np.floor(255 / 15), 0]


def test_known_directions_to_known_colours():
    # Hand-computed from the wheel: angle index fk = (atan2(-v, -u)/pi + 1) / 2 * 54.
    assert _one(1, 0) == [255, 0, 0]          # right: fk 0 -> red
    assert _one(0, 1) == [255, 229, 0]        # down: fk 13.5, G = floor((221+238)/2)
    assert _one(-1, 0) == [0, 209, 255]       # left: fk 27, CB ramp step 2
    assert _one(0, -1) == [88, 0, 255]        # up: fk 40.5, R = floor((78+98)/2)
    assert _one(0, 0) == [255, 255, 255]      # no motion: white


def test_hue_follows_direction_and_saturation_follows_magnitude():
    hues = []
    for deg in (0, 90, 180, 270):
        t = np.deg2rad(deg)
        r, g, b = _one(np.cos(t), np.sin(t))
        hues.append(colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)[0] * 360)
    # right red (0), down yellow (~54), left cyan-blue (~191), up violet (~261)
    np.testing.assert_allclose(hues, [0.0, 54.0, 191.0, 261.0], atol=2.0)
    half = _one(0.5, 0)
    assert half == [255, 127, 127]            # half radius: halfway to white
    over = _one(2.0, 0)
    assert over == [191, 0, 0]                # beyond max_flow: darkened to 75 %


def test_auto_scale_is_per_image_and_golden():
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(2, 6, 7, 2)).astype(np.float32) * 3
    batched = flow_colors.flow_to_color(flow)
    assert batched.shape == (2, 6, 7, 3) and batched.dtype == np.uint8
    for i in range(2):
        np.testing.assert_array_equal(batched[i], flow_colors.flow_to_color(flow[i]))
    # scale invariance of the automatic normalisation
    np.testing.assert_array_equal(flow_colors.flow_to_color(flow[0]), flow_colors.flow_to_color(10 * flow[0]))
    # golden: a tiny field over all directions, hash of the bytes (produced once, checked by hand
    # at the four axis directions above)
    yy, xx = np.mgrid[-3:4, -3:4].astype(np.float32)
    img = flow_colors.flow_to_color(np.stack([xx, yy], -1), max_flow=3.0)
    assert img[3, 3].tolist() == [255, 255, 255]
    assert img[3, 6].tolist() == [255, 0, 0]
    assert hashlib.sha256(img.tobytes()).hexdigest()[:16] == GOLDEN_7x7


GOLDEN_7x7 = "14faf6110d6f9309"


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 2\)"):
        flow_colors.flow_to_color(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="max_flow"):
        flow_colors.flow_to_color(np.zeros((4, 4, 2)), max_flow=0)


def test_error_map_and_panel():
    gt = np.zeros((8, 10, 2), np.float32)
    pred = gt.copy()
    pred[:, 5:, 0] = 2.0
    valid = np.ones((8, 10), np.float32)
    valid[0] = 0
    err = flow_colors.error_map(pred, gt, valid)
    assert err.shape == (8, 10, 3)
    assert (err[0] == 0).all()                           # invalid: black
    assert (err[1:, 5:] == err[1, 9]).all()              # one error value, one colour
    assert err[1, 9].astype(int).sum() > err[1, 0].astype(int).sum()  # larger error brighter
    frame = np.full((8, 10, 3), 128, np.uint8)
    panel = flow_colors.flow_panel(frame, pred, gt, valid, labels=False)
    assert panel.shape == (8, 4 * 10 + 3 * 4, 3)
    np.testing.assert_array_equal(panel[:, :10], frame)
    assert flow_colors.flow_panel(frame, pred).shape == (8, 2 * 10 + 4, 3)
    with pytest.raises(ValueError, match="one height"):
        flow_colors.side_by_side([frame, frame[:4]])
