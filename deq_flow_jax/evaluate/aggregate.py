"""Dataset-level flow metrics: pools of pixels and the pooling rule of each benchmark.

The metrics themselves are defined once, in `deq_flow_jax.metrics` (EPE, 1/3/5px in
percent, KITTI Fl-all). This module decides which pixels and images they are taken over.
`MetricAccumulator` keeps exact counts (`metrics.ErrorSums`) for every pool at once:

* ``all``: every pixel of every image, no mask (official Chairs, Sintel, Things);
* ``masked``: pixels with valid >= 0.5 and |gt| < max_flow (Things "with mask", KITTI,
  the synthetic set, training validation). The official Things script zeroes masked-out
  pixels and still averages over all pixels; that number is kept as
  ``*_masked_official``, the proper mean over the valid pixels is ``*_masked``;
* ``noc`` / ``occ`` (only when occlusion maps are given): masked pixels that stay
  visible in / leave the second frame;
* ``s0-10`` / ``s10-40`` / ``s40+``: masked pixels by ground-truth speed (|gt| in px:
  below 10, 10 to below 40, 40 and above), the Sintel leaderboard's bins;
* per image: the masked EPE of each image (KITTI and Middlebury average it over images).

`MetricAccumulator.summary(rule)` turns these into the five canonical metrics
(`metrics.METRIC_NAMES`) by one of the pooling rules in `POOLING_RULES`; each protocol
in `deq_flow_jax.evaluate.protocols` names its rule. Inputs are (H, W, 2) flows in pixels.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deq_flow_jax import metrics as M

SPEED_BINS = (("s0-10", 0.0, 10.0), ("s10-40", 10.0, 40.0), ("s40+", 40.0, float("inf")))

POOLING_RULES = {
    "all": "EPE and n-px over all pixels of all images; Fl-all over the masked pixels",
    "masked": "every metric over the masked pixels (valid, |gt| < max_flow) of all images",
    "per_image": "EPE per image over its masked pixels, averaged over images (KITTI, "
                 "Middlebury); n-px and Fl-all over the masked pixels of all images",
}


@jax.jit
def _image_sums(pred, gt, valid, occlusion, max_flow):
    """ErrorSums of one (H, W, 2) image for every pool (one compiled program per shape)."""
    err = M.epe_map(pred, gt)
    mag = M.flow_magnitude(gt)
    mask = M.valid_mask(gt, valid, max_flow)
    out = {"all": M.error_sums(err, mag, jnp.ones(err.shape, bool)),
           "masked": M.error_sums(err, mag, mask)}
    for name, lo, hi in SPEED_BINS:
        out[name] = M.error_sums(err, mag, mask & (mag >= lo) & (mag < hi))
    if occlusion is not None:
        occ = occlusion >= 0.5
        out["noc"] = M.error_sums(err, mag, mask & ~occ)
        out["occ"] = M.error_sums(err, mag, mask & occ)
    return out


def _host(s: M.ErrorSums) -> M.ErrorSums:
    s = jax.device_get(s)
    return M.ErrorSums(int(s.n), float(s.epe), np.asarray(s.below, np.int64), int(s.outliers))


def _zero() -> M.ErrorSums:
    return M.ErrorSums(0, 0.0, np.zeros(len(M.THRESHOLDS), np.int64), 0)


def _summary(s: M.ErrorSums, suffix: str = "", with_fl: bool = True) -> dict:
    out = {f"{k}{suffix}": float(v) for k, v in M.summarize(s).items()}
    if not with_fl:
        out.pop(f"fl_all{suffix}")
    return out


class MetricAccumulator:
    """Accumulates flow errors over a dataset.

    Args:
        max_flow: ground-truth magnitudes at or above this are excluded from the
            masked statistics (official MAX_FLOW = 400).

    `add(pred, gt, valid, occlusion)` returns the image's own metrics; `result()` returns
    every pool's (percentages in 0..100):

    * `epe`, `1px`, `3px`, `5px`: over all pixels;
    * `epe_masked`, `1px_masked`, ...: over the masked pixels; `fl_all`: Fl-all over them;
    * `epe_masked_official`, ...: the official Things "w/ mask" numbers
      (masked pixels count as zero error in an all-pixel mean);
    * `epe_noc`, `epe_occ`, ... and their pixel counts `n_noc`, `n_occ` (only when occlusion
      maps were given);
    * `epe_s0-10`, `epe_s10-40`, `epe_s40+`, `1px_s0-10`, ...: by ground-truth speed, with
      counts `n_s0-10`, ...;
    * `epe_per_image`: mean over images of the masked EPE (KITTI EPE);
    * `n_images`, `n_pixels`, `n_valid`.

    `summary(rule)` returns the canonical `metrics.METRIC_NAMES` under a pooling rule.
    """

    def __init__(self, max_flow: float = M.MAX_FLOW):
        self.max_flow = float(max_flow)
        self.pools = {"all": _zero(), "masked": _zero()}
        self.per_image_epe: list[float] = []
        self.n_images = 0

    def add(self, pred, gt, valid=None, occlusion=None) -> dict:
        """Adds one image.

        Args:
            pred, gt: (H, W, 2) flows.
            valid: optional (H, W), >= 0.5 is valid.
            occlusion: optional (H, W), >= 0.5 where the pixel is hidden in frame 2.

        Returns:
            the image's {"epe" (all pixels), "epe_masked", "fl_all", "n_valid"}.
        """
        pred, gt = np.asarray(pred, np.float32), np.asarray(gt, np.float32)
        if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must both be (H, W, 2)")
        if valid is not None:
            valid = np.asarray(valid, np.float32)
            if valid.shape != gt.shape[:2]:
                raise ValueError(f"valid mask {valid.shape} does not match flow {gt.shape[:2]}")
        if occlusion is not None:
            occlusion = np.asarray(occlusion, np.float32)
            if occlusion.shape != gt.shape[:2]:
                raise ValueError(f"occlusion map {occlusion.shape} does not match flow {gt.shape[:2]}")
        sums = {k: _host(v) for k, v in
                _image_sums(pred, gt, valid, occlusion, np.float32(self.max_flow)).items()}
        for k, s in sums.items():
            self.pools[k] = self.pools.get(k, _zero()).plus(s)
        self.n_images += 1
        image = M.summarize(sums["masked"])
        if sums["masked"].n:
            self.per_image_epe.append(float(image["epe"]))
        return {"epe": float(M.summarize(sums["all"])["epe"]), "epe_masked": float(image["epe"]),
                "fl_all": float(image["fl_all"]), "n_valid": sums["masked"].n}

    def result(self) -> dict:
        all_, masked = self.pools["all"], self.pools["masked"]
        res = _summary(all_, with_fl=False)
        res.update(_summary(masked, "_masked", with_fl=False))
        res["fl_all"] = float(M.summarize(masked)["fl_all"])
        n_all, n_val = all_.n, masked.n
        if n_all:
            res["epe_masked_official"] = masked.epe / n_all
            for t, k in zip(M.THRESHOLDS, masked.below):
                res[f"{int(t)}px_masked_official"] = 100.0 * (int(k) + n_all - n_val) / n_all
        for k in ("noc", "occ") + tuple(name for name, _, _ in SPEED_BINS):
            if k in self.pools:
                res.update(_summary(self.pools[k], f"_{k}", with_fl=False))
                res[f"n_{k}"] = self.pools[k].n
        res["epe_per_image"] = float(np.mean(self.per_image_epe)) if self.per_image_epe else float("nan")
        res["n_images"] = self.n_images
        res["n_pixels"] = n_all
        res["n_valid"] = n_val
        return res

    def summary(self, rule: str) -> dict:
        """`metrics.METRIC_NAMES` pooled by `rule` (a key of `POOLING_RULES`)."""
        if rule not in POOLING_RULES:
            raise ValueError(f"unknown pooling rule {rule!r}; expected one of {sorted(POOLING_RULES)}")
        masked = _summary(self.pools["masked"])
        if rule == "masked":
            return masked
        if rule == "all":
            return {**_summary(self.pools["all"], with_fl=False), "fl_all": masked["fl_all"]}
        per_image = float(np.mean(self.per_image_epe)) if self.per_image_epe else float("nan")
        return {**masked, "epe": per_image}
