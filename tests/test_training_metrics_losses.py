"""Metrics, the fixed-point correction loss and the schedules against hand-made cases."""
import numpy as np
import pytest
from ml_collections import ConfigDict

from deq_flow_jax.metrics import epe_map, flow_metrics, valid_mask
from deq_flow_jax.train.losses import fixed_point_correction_loss
from deq_flow_jax.train.optim import cosine, make_optimizer, onecycle_linear


def test_epe_and_px_metrics_hand_case():
    gt = np.zeros((1, 2, 2, 2), np.float32)
    pred = np.zeros_like(gt)
    pred[0, 0, 0] = (3.0, 4.0)      # EPE 5
    pred[0, 0, 1] = (0.0, 2.0)      # EPE 2
    pred[0, 1, 0] = (0.5, 0.0)      # EPE 0.5
    pred[0, 1, 1] = (100., 0.)      # EPE 100 but invalid
    valid = np.array([[[1, 1], [1, 0]]], np.float32)
    np.testing.assert_allclose(epe_map(pred, gt)[0], [[5, 2], [0.5, 100]], rtol=1e-6)
    m = flow_metrics(pred, gt, valid)
    np.testing.assert_allclose(m["epe"], 7.5 / 3, rtol=1e-6)
    np.testing.assert_allclose(m["1px"], 100 / 3, rtol=1e-6)     # percent of valid pixels
    np.testing.assert_allclose(m["3px"], 200 / 3, rtol=1e-6)
    np.testing.assert_allclose(m["5px"], 200 / 3, rtol=1e-6)   # 5 is not < 5
    # gt = 0 everywhere: every pixel with EPE > 3 is an outlier -> 1 of 3
    np.testing.assert_allclose(m["fl_all"], 100 / 3, rtol=1e-6)


def test_f1_relative_threshold_and_max_flow():
    gt = np.zeros((1, 1, 3, 2), np.float32)
    gt[0, 0, 0] = (100.0, 0.0)   # err 4 > 3 but 4/100 < 0.05 -> inlier
    gt[0, 0, 1] = (10.0, 0.0)    # err 4, 4/10 > 0.05 -> outlier
    gt[0, 0, 2] = (500.0, 0.0)   # |gt| >= 400 -> ignored
    pred = gt + np.array([4.0, 0.0], np.float32)
    assert valid_mask(gt).tolist() == [[[True, True, False]]]
    m = flow_metrics(pred, gt)
    np.testing.assert_allclose(m["fl_all"], 50.0, rtol=1e-6)
    np.testing.assert_allclose(m["epe"], 4.0, rtol=1e-6)


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="valid"):
        flow_metrics(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="pred and gt"):
        epe_map(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 3)))


def test_no_valid_pixel_gives_the_empty_value():
    m = flow_metrics(np.ones((1, 2, 2, 2)), np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)))
    assert all(np.isnan(float(v)) for v in m.values())
    m = flow_metrics(np.ones((1, 2, 2, 2)), np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)), empty=0.0)
    assert all(float(v) == 0.0 for v in m.values())


def test_fixed_point_correction_loss_hand_case():
    gt = np.zeros((1, 2, 2, 2), np.float32)
    valid = np.ones((1, 2, 2), np.float32)
    valid[0, 1, 1] = 0.0
    p0 = np.full_like(gt, 1.0)     # |err| 1 per channel, 3 valid pixels of 4 -> mean 6/8
    p1 = np.full_like(gt, 2.0)     # mean 12/8
    p2 = np.full_like(gt, 0.5)     # mean 3/8
    loss, m = fixed_point_correction_loss([p0, p1, p2], gt, valid, gamma=0.8)
    expected = 0.64 * 6 / 8 + 0.8 * 12 / 8 + 1.0 * 3 / 8
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(m["epe"], np.sqrt(0.5), rtol=1e-6)
    # gamma only matters with more than one term
    loss1, _ = fixed_point_correction_loss([p2], gt, valid, gamma=0.1)
    np.testing.assert_allclose(loss1, 3 / 8, rtol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        fixed_point_correction_loss([], gt, valid)


def test_onecycle_matches_torch_formula():
    max_lr, num_steps = 4e-4, 1000
    total = num_steps + 100
    sched = onecycle_linear(max_lr, total, 0.05)
    end_up = 0.05 * total - 1          # 54
    lo = max_lr / 25
    assert np.isclose(sched(0), lo, rtol=1e-6)
    assert np.isclose(sched(int(end_up)), max_lr, rtol=1e-6)
    assert np.isclose(sched(27), lo + (max_lr - lo) * 27 / end_up, rtol=1e-5)
    assert np.isclose(sched(total - 1), lo / 1e4, rtol=1e-4)
    mid = 600
    assert np.isclose(sched(mid), max_lr + (lo / 1e4 - max_lr) * (mid - end_up) / (total - 1 - end_up),
                      rtol=1e-5)
    cfg = ConfigDict(dict(schedule="onecycle", lr=max_lr, num_steps=num_steps, pct_start=0.05,
                          clip=1.0, weight_decay=1e-4))
    _, s2 = make_optimizer(cfg)
    assert np.isclose(s2(300), sched(300))


def test_cosine_schedule():
    s = cosine(1e-3, 100)
    assert np.isclose(s(0), 1e-3)
    assert np.isclose(s(50), 1e-6 + (1e-3 - 1e-6) / 2, rtol=1e-5)
    assert np.isclose(s(100), 1e-6, rtol=1e-4)
    with pytest.raises(ValueError, match="schedule"):
        make_optimizer(ConfigDict(dict(schedule="step", lr=1.0, num_steps=3, clip=1.0,
                                       weight_decay=0.0)))
