"""Metrics, the fixed-point correction loss and the schedules against hand-made cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from deq_flow_jax.metrics import epe_map, flow_metrics, valid_mask
from deq_flow_jax.train.losses import boundary_weights, fixed_point_correction_loss, motion_boundaries
from deq_flow_jax.train.optim import cosine, make_optimizer, make_schedule, onecycle_linear


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


def test_motion_boundaries_mark_jumps_not_smooth_fields():
    step = np.zeros((1, 10, 12, 2), np.float32)
    step[0, :, 6:, 0] = 3.0                       # a 3 px jump between columns 5 and 6
    cols = np.asarray(motion_boundaries(step, radius=0))[0].any(0)
    assert np.flatnonzero(cols).tolist() == [5, 6]
    cols = np.asarray(motion_boundaries(step, radius=2))[0]
    assert (cols[:, 3:9] == 1).all() and cols[:, :3].sum() == 0 and cols[:, 9:].sum() == 0
    vert = np.zeros((1, 10, 12, 2), np.float32)
    vert[0, 4:, :, 1] = -2.0                      # a jump between rows 3 and 4, in v
    assert np.flatnonzero(np.asarray(motion_boundaries(vert, radius=0))[0].any(1)).tolist() == [3, 4]
    # a zoom of 0.8 px per pixel (a slanted plane): no discontinuity at threshold 1, all at 0.5
    ys, xs = np.mgrid[0:10, 0:12].astype(np.float32)
    zoom = (0.8 * np.stack([xs, ys], -1))[None]
    assert float(np.asarray(motion_boundaries(zoom)).sum()) == 0.0
    assert float(np.asarray(motion_boundaries(zoom, threshold=0.5, radius=0)).mean()) == 1.0


def test_boundary_weighted_loss_keeps_its_mean_and_moves_the_emphasis():
    gt = np.zeros((1, 10, 12, 2), np.float32)
    gt[0, :, 6:, 0] = 3.0
    valid = np.ones((1, 10, 12), np.float32)
    valid[0, 0] = 0.0
    w = np.asarray(boundary_weights(gt, valid, 4.0, radius=1))
    np.testing.assert_allclose((w * valid).sum() / valid.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w[0, 5, 5] / w[0, 5, 0], 5.0, rtol=1e-6)
    uniform = gt + 0.5                            # the same error everywhere: weights average out
    plain, _ = fixed_point_correction_loss([uniform], gt, valid)
    weighted, _ = fixed_point_correction_loss([uniform], gt, valid, boundary_weight=4.0)
    np.testing.assert_allclose(weighted, plain, rtol=1e-6)
    at_edge = gt.copy()
    at_edge[0, :, 5:7, 0] += 2.0                  # errors only on the boundary's two columns
    plain, m_plain = fixed_point_correction_loss([at_edge], gt, valid)
    weighted, m_weighted = fixed_point_correction_loss([at_edge], gt, valid, boundary_weight=4.0,
                                                       boundary_radius=1)
    assert float(weighted) > 2.0 * float(plain)
    assert float(m_weighted["epe"]) == float(m_plain["epe"])   # the metrics stay unweighted
    zero, _ = fixed_point_correction_loss([at_edge], gt, valid, boundary_weight=0.0)
    assert float(zero) == float(plain)
    none_valid, _ = fixed_point_correction_loss([at_edge], gt, np.zeros_like(valid), boundary_weight=4.0)
    assert float(none_valid) == 0.0                             # finite: nothing to weigh
    with pytest.raises(ValueError, match="boundary_weight"):
        fixed_point_correction_loss([at_edge], gt, valid, boundary_weight=-1.0)


def test_loss_margin_ignores_small_errors_and_keeps_the_gradient_of_large_ones():
    rng = np.random.default_rng(3)
    gt = rng.normal(size=(2, 6, 8, 2)).astype(np.float32) * 4
    valid = np.ones((2, 6, 8), np.float32)
    valid[1, :2] = 0.0
    err = rng.normal(size=gt.shape).astype(np.float32)
    preds = [gt + 2 * err, gt + err]                   # two correction terms, gamma-weighted
    plain, metrics = fixed_point_correction_loss(preds, gt, valid)
    margin, m_margin = fixed_point_correction_loss(preds, gt, valid, margin=0.5)
    ref = sum(w * np.mean(valid[..., None] * np.maximum(np.abs(p - gt) - 0.5, 0))
              for w, p in zip((0.8, 1.0), preds))
    np.testing.assert_allclose(margin, ref, rtol=1e-6)
    assert float(margin) < float(plain)
    assert float(m_margin["epe"]) == float(metrics["epe"])    # the metrics are the plain ones
    zero, _ = fixed_point_correction_loss(preds, gt, valid, margin=0.0)
    assert float(zero) == float(plain)
    # within the margin: no loss and no gradient; beyond it, the plain L1 gradient
    small = jnp.asarray(gt + 0.3 * np.sign(err))
    grad = jax.grad(lambda p: fixed_point_correction_loss([p], gt, valid, margin=0.5)[0])
    assert float(fixed_point_correction_loss([small], gt, valid, margin=0.5)[0]) == 0.0
    assert float(jnp.abs(grad(small)).max()) == 0.0
    large = jnp.asarray(gt + 2.0 * np.sign(err))
    plain_grad = jax.grad(lambda p: fixed_point_correction_loss([p], gt, valid)[0])
    np.testing.assert_allclose(grad(large), plain_grad(large), rtol=1e-6)
    with pytest.raises(ValueError, match="margin"):
        fixed_point_correction_loss(preds, gt, valid, margin=-0.1)


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


def _sched_cfg(**kw):
    base = dict(schedule="onecycle", lr=1e-3, num_steps=1000, pct_start=0.05, clip=1.0,
                weight_decay=0.0)
    base.update(kw)
    return ConfigDict(base)


def test_warm_restarts_onecycle_and_cosine():
    s = make_schedule(_sched_cfg(restarts=((400, 2e-4), (700, 1e-4))))
    first = onecycle_linear(1e-3, 500, 0.05)                     # the first cycle ends at 400
    final = 1e-3 / 25 / 1e4
    for t in (0, 10, 24, 200, 399):
        assert np.isclose(s(t), first(t), rtol=1e-6)
    assert np.isclose(s(400), 2e-4, rtol=1e-6)                   # the jump
    # a line from (400, 2e-4) to (700 + 99, final); then from (700, 1e-4) to (1000 + 99, final)
    assert np.isclose(s(550), 2e-4 + (final - 2e-4) * 150 / 399, rtol=1e-5)
    assert np.isclose(s(699), 2e-4 + (final - 2e-4) * 299 / 399, rtol=1e-5)
    assert np.isclose(s(700), 1e-4, rtol=1e-6)
    assert np.isclose(s(999), 1e-4 + (final - 1e-4) * 299 / 399, rtol=1e-5)
    # a restart at s with the one-cycle's own lr there continues that one-cycle
    horizon = onecycle_linear(1e-3, 1100, 0.05)
    r = make_schedule(_sched_cfg(restarts=((300, float(horizon(300))),)))
    steps = np.arange(300, 1000)
    np.testing.assert_allclose(r(steps), horizon(steps), rtol=1e-5, atol=1e-12)
    c = make_schedule(_sched_cfg(schedule="cosine", restarts=((400, 2e-4),)))
    assert np.isclose(c(200), cosine(1e-3, 400)(200), rtol=1e-6)
    assert np.isclose(c(400), 2e-4, rtol=1e-6)
    assert np.isclose(c(700), cosine(2e-4, 600)(300), rtol=1e-6)
    assert np.isclose(make_schedule(_sched_cfg(restarts=()))(300), horizon(300), rtol=1e-6)


@pytest.mark.parametrize("restarts, match", [
    (((500, 1e-4), (500, 1e-5)), "increase"),
    (((0, 1e-4),), "increase"),
    (((1000, 1e-4),), "increase"),
    (((500, 0.0),), "lr > 0"),
    (((500, float("nan")),), "lr > 0"),
    (((500.5, 1e-4),), "integer step"),
    ((500, 1e-4), "pair"),
    (((500, 1e-4, 3),), "pair"),
])
def test_warm_restarts_refused(restarts, match):
    from deq_flow_jax.configs.common import base_config
    from deq_flow_jax.train.config import check_config
    with pytest.raises(ValueError, match=match) as e:
        make_schedule(_sched_cfg(restarts=restarts))
    assert str(e.value).startswith("config.restarts")
    c = base_config("tiny")
    c.num_steps, c.restarts = 1000, restarts
    with pytest.raises(ValueError, match="config.restarts"):
        check_config(c)


def test_cpu_pretrain_restarts_reproduce_the_run():
    """The shipped recipe's restarts give the lr the committed run was trained with: from step
    7,200 to 42,000 the one-cycles the config said with a nominal peak (lr 1e-4 over 10k, 30k,
    36k, 42k steps); from 42,000 (the photo-flat branch, sessions 29-31) the lr that
    training/cpu_pretrain/train.jsonl logged (each record the mean over the 10 steps before it)."""
    import os

    from training_helpers import REPO

    from deq_flow_jax.configs.cpu_pretrain import get_config
    from deq_flow_jax.train.curves import read_jsonl
    c = get_config()
    sched = make_schedule(c)
    for lo, hi, peak, n in [(7_200, 10_000, 1e-4, 10_000), (10_000, 30_000, 1e-4, 30_000),
                            (30_000, 36_000, 1e-4, 36_000), (36_000, 42_000, 1e-4, 42_000)]:
        steps = np.arange(lo, hi, 7)
        ran = onecycle_linear(peak, n + 100, c.pct_start)(steps)
        np.testing.assert_allclose(sched(steps), ran, rtol=0, atol=3e-9, err_msg=f"{lo}-{hi}")
        assert float(sched(lo)) > float(sched(lo - 1)) or lo == 7_200   # each restart jumps
    for step, lr in [(42_000, 2e-5), (43_000, 2e-5), (45_000, 2e-5)]:
        assert np.isclose(sched(step), lr, rtol=1e-6) and float(sched(step - 1)) < 2e-6
    assert float(sched(c.num_steps - 1)) < 2e-6 and c.num_steps == 47_000
    log = os.path.join(REPO, "training", "cpu_pretrain", "train.jsonl")
    rows = [r for r in read_jsonl(log) if r["kind"] == "train" and r["step"] > 42_000]
    assert rows and rows[-1]["step"] == c.num_steps
    logged = np.array([r["lr"] for r in rows])
    ran = np.array([np.mean(np.asarray(sched(np.arange(r["step"] - 10, r["step"])))) for r in rows])
    np.testing.assert_allclose(ran, logged, rtol=0, atol=1e-10)
