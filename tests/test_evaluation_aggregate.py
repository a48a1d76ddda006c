"""Benchmark-style metric pooling on hand-made cases (deq_flow_jax.evaluate.aggregate)."""
import numpy as np
import pytest

from deq_flow_jax.evaluate.aggregate import MetricAccumulator
from deq_flow_jax.metrics import epe_map


def _flow(h, w, u=0.0, v=0.0):
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0], f[..., 1] = u, v
    return f


def test_epe_and_thresholds_pool_over_pixels():
    acc = MetricAccumulator()
    gt = _flow(2, 2)
    pred = gt.copy()
    # errors: 0, 0.5 (<1), 2 (<3), 4 (<5); as a 3-4-5 triangle for one pixel
    pred[0, 1] = (0.3, 0.4)
    pred[1, 0] = (2.0, 0.0)
    pred[1, 1] = (0.0, -4.0)
    np.testing.assert_allclose(epe_map(pred, gt), [[0, 0.5], [2, 4]], atol=1e-6)
    acc.add(pred, gt)
    # second image: 4 pixels of error 10
    acc.add(_flow(2, 2, 10.0), _flow(2, 2))
    r = acc.result()
    assert r["n_pixels"] == 8 and r["n_images"] == 2
    np.testing.assert_allclose(r["epe"], (0 + 0.5 + 2 + 4 + 40) / 8, rtol=1e-6)
    np.testing.assert_allclose([r["1px"], r["3px"], r["5px"]], [25.0, 37.5, 50.0])


def test_kitti_epe_is_per_image_and_f1_pools_valid_pixels():
    acc = MetricAccumulator()
    gt1 = _flow(1, 4, 100.0)                  # |gt| = 100: 5 % is 5 px
    pred1 = gt1.copy()
    pred1[0, 0, 0] += 4.0                     # EPE 4 > 3 but < 5 % of 100: not an outlier
    pred1[0, 1, 0] += 6.0                     # EPE 6 > 3 and > 5: outlier
    valid1 = np.array([[1, 1, 1, 0]], np.float32)
    pred1[0, 3, 0] += 1000.0                  # invalid pixel: ignored
    gt2 = _flow(1, 2, 10.0)                   # 5 % of 10 = 0.5
    pred2 = gt2 + np.array([3.5, 0.0], np.float32)   # EPE 3.5: both pixels outliers
    per1 = acc.add(pred1, gt1, valid1)
    acc.add(pred2, gt2, np.ones((1, 2)))
    np.testing.assert_allclose(per1["epe_masked"], 10.0 / 3, rtol=1e-6)
    np.testing.assert_allclose(per1["fl_all"], 100.0 / 3, rtol=1e-6)
    r = acc.result()
    np.testing.assert_allclose(r["epe_per_image"], (10.0 / 3 + 3.5) / 2, rtol=1e-6)
    np.testing.assert_allclose(r["fl_all"], 100.0 * 3 / 5, rtol=1e-6)   # 3 outliers / 5 valid
    assert r["n_valid"] == 5
    s = acc.summary("per_image")              # KITTI's rule: EPE per image, Fl-all pooled
    assert list(s) == ["epe", "1px", "3px", "5px", "fl_all"]
    np.testing.assert_allclose([s["epe"], s["fl_all"]], [r["epe_per_image"], r["fl_all"]])
    # pooled over the 5 valid pixels instead: (4 + 6 + 0 + 3.5 + 3.5) / 5
    np.testing.assert_allclose(acc.summary("masked")["epe"], 17.0 / 5, rtol=1e-6)
    np.testing.assert_allclose(acc.summary("all")["epe"], r["epe"])


def test_masks_exclude_invalid_and_huge_flow_and_official_quirk():
    acc = MetricAccumulator(max_flow=400.0)
    gt = _flow(1, 4, 1.0)
    gt[0, 3, 0] = 500.0                        # |gt| >= 400: excluded from masked stats
    pred = gt + np.array([2.0, 0.0], np.float32)   # EPE 2 everywhere
    valid = np.array([[1, 0, 1, 1]])
    acc.add(pred, gt, valid)
    r = acc.result()
    assert r["n_valid"] == 2
    np.testing.assert_allclose(r["epe_masked"], 2.0)
    np.testing.assert_allclose(r["epe"], 2.0)
    # official "w/ mask": masked pixels count as zero error over all 4 pixels
    np.testing.assert_allclose(r["epe_masked_official"], 1.0)
    np.testing.assert_allclose(r["1px_masked_official"], 50.0)
    np.testing.assert_allclose(r["3px_masked"], 100.0)


def test_errors_on_mismatched_shapes_and_empty():
    acc = MetricAccumulator()
    with pytest.raises(ValueError, match="must both be"):
        acc.add(_flow(2, 2), _flow(2, 3))
    with pytest.raises(ValueError, match="valid mask"):
        acc.add(_flow(2, 2), _flow(2, 2), np.ones((3, 3)))
    assert np.isnan(MetricAccumulator().result()["epe"])
    with pytest.raises(ValueError, match="pooling rule"):
        MetricAccumulator().summary("mean")


def test_occlusion_split():
    acc = MetricAccumulator()
    gt = _flow(1, 4)
    pred = gt + np.array([[[1.0, 0], [2.0, 0], [3.0, 0], [4.0, 0]]], np.float32)
    occ = np.array([[0, 0, 1, 1]], np.float32)
    valid = np.array([[1, 1, 1, 0]], np.float32)
    acc.add(pred, gt, valid, occ)
    r = acc.result()
    np.testing.assert_allclose([r["epe_noc"], r["epe_occ"], r["epe_masked"]], [1.5, 3.0, 2.0])
    assert (r["n_noc"], r["n_occ"], r["n_valid"]) == (2, 1, 3)
    assert "epe_noc" not in MetricAccumulator().result()


def test_speed_bins_split_masked_pixels_by_ground_truth_speed():
    """Sintel's s0-10 / s10-40 / s40+: each masked pixel in the bin of its |gt|, edges to the
    upper bin; invalid pixels in none; an empty bin is NaN."""
    acc = MetricAccumulator()
    gt = np.array([[[3.0, 4.0], [10.0, 0.0], [0.0, 39.0], [40.0, 0.0], [0.0, 50.0]]], np.float32)
    pred = gt + np.array([[[1.0, 0], [2.0, 0], [3.0, 0], [4.0, 0], [8.0, 0]]], np.float32)
    valid = np.array([[1, 1, 1, 1, 0]], np.float32)
    acc.add(pred, gt, valid)
    r = acc.result()
    np.testing.assert_allclose([r["epe_s0-10"], r["epe_s10-40"], r["epe_s40+"]], [1.0, 2.5, 4.0])
    assert r["1px_s10-40"] == 0.0
    assert (r["n_s0-10"], r["n_s10-40"], r["n_s40+"]) == (1, 2, 1)
    acc = MetricAccumulator()
    acc.add(gt[:, :1], gt[:, :1])
    assert np.isnan(acc.result()["epe_s40+"]) and acc.result()["epe_s0-10"] == 0.0
