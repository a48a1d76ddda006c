"""Periodic validation during training: EPE / n-px of the model against zero flow.

Pixels are pooled over all pairs (official `validate_chairs` style: every valid pixel of
the validation set weighs the same). Runs the same on every process (identical results),
one pair at a time through `estimate_flow` (any image size; padding inside).
"""
from __future__ import annotations

import numpy as np

from deq_flow_jax.metrics import epe_map, valid_mask


def validation_pairs(source, max_examples: int = 0):
    """Indices of the pairs to validate on: the first `max_examples` (0 = all)."""
    n = len(source)
    if n == 0:
        raise ValueError("validation source is empty")
    return range(n if max_examples <= 0 else min(n, max_examples))


def validate(variables, model_cfg, deq_cfg, source, *, max_examples: int = 0,
             pad_mode: str = "sintel", num_images: int = 0):
    """Validation metrics of `variables` on `source` (contract 3 `make_eval_source`).

    Args:
      variables: model variables (host or replicated arrays).
      model_cfg, deq_cfg: ModelConfig, DEQConfig; the solve uses deq_cfg.f_solver with
        deq_cfg.eval_max_steps f-evaluations (f_max_steps * eval_factor), tol f_tol.
      source: random-access pairs {"image1", "image2" (H, W, 3) uint8, "flow", "valid"}.
      max_examples: first N pairs (0 = all).
      pad_mode: "sintel" or "kitti" padding to a multiple of 8.
      num_images: also return this many (image1, predicted flow, gt flow) triples.

    Returns:
      (metrics dict with epe, 1px, 3px, 5px, f1, zero_epe, f_nstep, f_rel, f_abs, n_pairs;
       list of (image1 uint8, flow_pred, flow_gt) numpy triples).
    """
    from deq_flow_jax.model import estimate_flow
    sums = dict(err=0.0, px1=0.0, px3=0.0, px5=0.0, f1=0.0, zero=0.0, n=0.0)
    nstep, frel, fabs, panels = [], [], [], []
    idx = validation_pairs(source, max_examples)
    for i in idx:
        ex = source[i]
        if "flow" not in ex:
            raise ValueError(f"validation pair {i} has no ground-truth flow (a test split?)")
        gt = np.asarray(ex["flow"], np.float32)
        valid = np.asarray(ex.get("valid", np.ones(gt.shape[:2], np.float32)), np.float32)
        res = estimate_flow(variables, model_cfg, ex["image1"], ex["image2"],
                            solver=deq_cfg.f_solver, max_steps=deq_cfg.eval_max_steps,
                            tol=deq_cfg.f_tol, stop_mode=deq_cfg.f_stop_mode, pad_mode=pad_mode)
        pred = np.asarray(res.flow[0])
        err = np.asarray(epe_map(pred, gt))
        mask = np.asarray(valid_mask(gt, valid), np.float32)
        mag = np.sqrt(np.sum(gt ** 2, axis=-1))
        sums["err"] += float(np.sum(err * mask))
        sums["zero"] += float(np.sum(mag * mask))
        sums["px1"] += float(np.sum((err < 1) * mask))
        sums["px3"] += float(np.sum((err < 3) * mask))
        sums["px5"] += float(np.sum((err < 5) * mask))
        sums["f1"] += float(np.sum(((err > 3) & (err > 0.05 * mag)) * mask))
        sums["n"] += float(np.sum(mask))
        nstep.append(np.asarray(res.stats.nstep, np.float32).mean())
        frel.append(np.asarray(res.stats.rel_lowest, np.float32).mean())
        fabs.append(np.asarray(res.stats.abs_lowest, np.float32).mean())
        if len(panels) < num_images:
            panels.append((np.asarray(ex["image1"]), pred, gt))
    n = max(sums["n"], 1.0)
    metrics = {"epe": sums["err"] / n, "1px": sums["px1"] / n, "3px": sums["px3"] / n,
               "5px": sums["px5"] / n, "f1": 100.0 * sums["f1"] / n, "zero_epe": sums["zero"] / n,
               "f_nstep": float(np.mean(nstep)), "f_rel": float(np.mean(frel)),
               "f_abs": float(np.mean(fabs)), "n_pairs": len(idx)}
    return metrics, panels
