"""Dataset-level flow metrics, aggregated the way each benchmark does it.

Per-image end-point errors are pooled differently by the official protocols
(DEQ-Flow / RAFT `evaluate.py`):

* Chairs, Sintel, Things: EPE averaged over all pixels of all images (no
  validity mask); 1px / 3px / 5px = % of those pixels with EPE below the bound.
* Things "with mask": pixels with valid >= 0.5 and |gt| < 400 only. The
  official script zeroes masked-out pixels and still averages over all pixels;
  that number is reported as `*_masked_official`, the proper mean over the
  valid pixels as `*_masked`.
* KITTI: EPE averaged over valid pixels within each image, then over images;
  F1-all = % of all valid pixels (pooled) with EPE > 3 px and EPE > 5 % of |gt|.
* Where an occlusion map is given (the synthetic data has one), `*_noc` pools the
  valid pixels that stay visible in the second frame, `*_occ` the occluded ones.

`MetricAccumulator` keeps running sums for all of these at once, so any
protocol can report any of them. All inputs are numpy (H, W, 2) flows in pixels.
"""
from __future__ import annotations

import dataclasses

import numpy as np

THRESHOLDS = (1.0, 3.0, 5.0)


def end_point_error(pred, gt) -> np.ndarray:
    """(H, W) float64 Euclidean distance between (H, W, 2) flows."""
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 2:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must both be (H, W, 2)")
    return np.sqrt(np.sum((pred - gt) ** 2, axis=-1))


@dataclasses.dataclass
class _Pool:
    """Running sums over a set of pixels."""

    n: int = 0
    epe_sum: float = 0.0
    below: list = dataclasses.field(default_factory=lambda: [0] * len(THRESHOLDS))

    def add(self, epe: np.ndarray) -> None:
        self.n += int(epe.size)
        self.epe_sum += float(epe.sum())
        for i, t in enumerate(THRESHOLDS):
            self.below[i] += int(np.count_nonzero(epe < t))

    def summary(self, suffix: str = "") -> dict:
        if self.n == 0:
            return {f"epe{suffix}": float("nan"), **{f"{int(t)}px{suffix}": float("nan") for t in THRESHOLDS}}
        out = {f"epe{suffix}": self.epe_sum / self.n}
        for t, k in zip(THRESHOLDS, self.below):
            out[f"{int(t)}px{suffix}"] = 100.0 * k / self.n
        return out


class MetricAccumulator:
    """Accumulates flow errors over a dataset.

    Args:
        max_flow: ground-truth magnitudes at or above this are excluded from the
            masked statistics (official MAX_FLOW = 400).

    `add(pred, gt, valid)` returns the image's own metrics; `result()` returns
    the dataset's:

    * `epe`, `1px`, `3px`, `5px`: over all pixels (Chairs, Sintel, Things);
    * `epe_masked`, `1px_masked`, ...: over valid pixels with |gt| < max_flow;
    * `epe_masked_official`, ...: the official Things "w/ mask" numbers
      (masked pixels count as zero error in an all-pixel mean);
    * `epe_noc`, `epe_occ`, ... (only when occlusion maps were given): masked
      pixels visible / hidden in the second frame;
    * `epe_per_image`: mean over images of the valid-pixel EPE (KITTI EPE);
    * `f1`: % of valid pixels that are outliers (KITTI F1-all);
    * `n_images`, `n_pixels`, `n_valid`.
    Percentages are in 0..100.
    """

    def __init__(self, max_flow: float = 400.0):
        self.max_flow = float(max_flow)
        self.all = _Pool()
        self.masked = _Pool()
        self.outliers = 0
        self.per_image_epe: list[float] = []
        self.n_images = 0
        self.noc = _Pool()
        self.occ = _Pool()
        self.has_occlusion = False

    def add(self, pred, gt, valid=None, occlusion=None) -> dict:
        """Adds one image.

        Args:
            pred, gt: (H, W, 2) flows.
            valid: optional (H, W), >= 0.5 is valid.
            occlusion: optional (H, W), >= 0.5 where the pixel is hidden in frame 2.
        """
        epe = end_point_error(pred, gt)
        gt = np.asarray(gt, np.float64)
        mag = np.sqrt(np.sum(gt ** 2, axis=-1))
        mask = np.ones(epe.shape, bool) if valid is None else np.asarray(valid) >= 0.5
        if mask.shape != epe.shape:
            raise ValueError(f"valid mask {mask.shape} does not match flow {epe.shape[:2]}")
        mask &= mag < self.max_flow
        self.all.add(epe)
        self.n_images += 1
        ev = epe[mask]
        self.masked.add(ev)
        if occlusion is not None:
            occ = np.asarray(occlusion) >= 0.5
            if occ.shape != epe.shape:
                raise ValueError(f"occlusion map {occ.shape} does not match flow {epe.shape}")
            self.has_occlusion = True
            self.noc.add(epe[mask & ~occ])
            self.occ.add(epe[mask & occ])
        out = (ev > 3.0) & (ev > 0.05 * mag[mask])
        self.outliers += int(np.count_nonzero(out))
        img_epe = float(ev.mean()) if ev.size else float("nan")
        if ev.size:
            self.per_image_epe.append(img_epe)
        return {
            "epe": float(epe.mean()),
            "epe_masked": img_epe,
            "f1": 100.0 * float(out.mean()) if ev.size else float("nan"),
            "n_valid": int(ev.size),
        }

    def result(self) -> dict:
        res = {}
        res.update(self.all.summary())
        res.update(self.masked.summary("_masked"))
        n_all, n_val = self.all.n, self.masked.n
        if n_all:
            res["epe_masked_official"] = self.masked.epe_sum / n_all
            for t, k in zip(THRESHOLDS, self.masked.below):
                res[f"{int(t)}px_masked_official"] = 100.0 * (k + n_all - n_val) / n_all
        if self.has_occlusion:
            res.update(self.noc.summary("_noc"))
            res.update(self.occ.summary("_occ"))
        res["epe_per_image"] = float(np.mean(self.per_image_epe)) if self.per_image_epe else float("nan")
        res["f1"] = 100.0 * self.outliers / n_val if n_val else float("nan")
        res["n_images"] = self.n_images
        res["n_pixels"] = n_all
        res["n_valid"] = n_val
        return res
