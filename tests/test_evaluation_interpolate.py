"""Forward interpolation of the previous flow (deq_flow_jax.evaluate.interpolate)."""
import numpy as np
import pytest
from scipy import interpolate

from deq_flow_jax.evaluate.interpolate import forward_interpolate


def test_translation_is_carried_over_unchanged():
    flow = np.zeros((9, 11, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.25, -0.5
    out = forward_interpolate(flow)
    np.testing.assert_array_equal(out, flow)


def test_shear_is_carried_along_rows():
    # u = 0.1 * y, v = 0: every vector stays in its row, so each pixel keeps its row's flow,
    # except row 0: landing points need 0 < y' strictly (the official rule), so row 0 is
    # dropped and takes the nearest row's (row 1's) flow.
    h, w = 12, 16
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = 0.1 * np.arange(h, dtype=np.float32)[:, None]
    expected = flow.copy()
    expected[0] = flow[1]
    np.testing.assert_allclose(forward_interpolate(flow), expected, atol=0)


def test_moving_object_lands_at_its_new_place():
    # Background still; a 3-pixel-wide bar (x = 2..4) moves +4.5 px and lands at 6.5..8.5.
    flow = np.zeros((5, 20, 2), np.float32)
    flow[:, 2:5, 0] = 4.5
    out = forward_interpolate(flow)
    # background samples sit on every integer except 2, 3, 4 (the bar left them): those
    # pixels take the nearest landed vector: bar landings at 6.5, 7.5, 8.5 are farther
    # than background samples at 1 and 5, so they stay background.
    np.testing.assert_array_equal(out, np.zeros_like(out))
    # Remove the background from the scene (all moving): every pixel takes the bar's motion.
    flow[:, :, 0] = 4.5
    np.testing.assert_array_equal(forward_interpolate(flow)[..., 0], np.full((5, 20), 4.5))


def test_matches_scipy_griddata_on_random_fields():
    rng = np.random.default_rng(3)
    for _ in range(3):
        h, w = 10, 13
        flow = rng.normal(scale=3.0, size=(h, w, 2)).astype(np.float32)
        x0, y0 = np.meshgrid(np.arange(w), np.arange(h))
        x1 = (x0 + flow[..., 0]).ravel()
        y1 = (y0 + flow[..., 1]).ravel()
        keep = (x1 > 0) & (x1 < w) & (y1 > 0) & (y1 < h)
        ref = np.stack([
            interpolate.griddata((x1[keep], y1[keep]), flow[..., c].ravel()[keep], (x0, y0),
                                 method="nearest")
            for c in range(2)], -1)
        np.testing.assert_allclose(forward_interpolate(flow), ref, atol=1e-6)


def test_batch_everything_leaves_and_bad_shape():
    flow = np.zeros((2, 4, 5, 2), np.float32)
    flow[1] = 100.0                                   # every vector leaves the image
    out = forward_interpolate(flow)
    assert out.shape == flow.shape
    np.testing.assert_array_equal(out, 0.0)
    with pytest.raises(ValueError, match="shape"):
        forward_interpolate(np.zeros((4, 5)))
