"""Periodic validation during training: the evaluation protocol of the validation set.

No loop of its own: the pairs go through `evaluate.protocols.evaluate_source` with the
protocol of the validation dataset (`protocols.protocol_for`: its padding and pooling
rule), so the training log reports exactly what `deq-flow eval` reports for the same
weights, data and solver settings. The zero-flow baseline is pooled by the same rule.
Runs the same on every process (identical results).
"""
from __future__ import annotations

import numpy as np

from deq_flow_jax.evaluate.aggregate import MetricAccumulator


def validation_pairs(source, max_examples: int = 0) -> int:
    """How many pairs to validate on: the first `max_examples` (0 = all)."""
    n = len(source)
    if n == 0:
        raise ValueError("validation source is empty")
    return n if max_examples <= 0 else min(n, max_examples)


def validate(variables, model_cfg, deq_cfg, source, *, dataset: str = "synthetic",
             max_examples: int = 0, num_images: int = 0):
    """Validation metrics of `variables` on `source` (contract 3 `make_eval_source`).

    Args:
      variables: model variables (host or replicated arrays).
      model_cfg, deq_cfg: ModelConfig, DEQConfig; the solve uses deq_cfg.f_solver with
        deq_cfg.eval_max_steps f-evaluations (f_max_steps * eval_factor), tol f_tol.
      source: random-access pairs {"image1", "image2" (H, W, 3) uint8, "flow", "valid"}.
      dataset: the source's dataset name; picks the protocol (padding, pooling rule).
      max_examples: first N pairs (0 = all).
      num_images: also return this many (image1, predicted flow, gt flow) triples.

    Returns:
      (metrics dict: epe, 1px, 3px, 5px, fl_all (`deq_flow_jax.metrics`, pooled by the
       protocol), zero_epe, f_nstep, f_rel, f_abs (means over pairs), n_pairs;
       list of (image1 uint8, flow_pred, flow_gt) numpy triples).
    """
    from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings
    from deq_flow_jax.evaluate.protocols import evaluate_source, protocol_for

    proto = protocol_for(dataset)
    settings = SolverSettings(solver=deq_cfg.f_solver, max_steps=deq_cfg.eval_max_steps,
                              tol=deq_cfg.f_tol, stop_mode=deq_cfg.f_stop_mode)
    estimator = FlowEstimator(variables, model_cfg, settings, pad_mode=proto.pad_mode)
    zero = MetricAccumulator()
    panels = []

    def on_frame(i, item, est):
        gt = np.asarray(item["flow"], np.float32)
        zero.add(np.zeros_like(gt), gt, item.get("valid"), item.get("occlusion"))
        if len(panels) < num_images:
            panels.append((np.asarray(item["image1"]), est.flow[0], gt))

    n = validation_pairs(source, max_examples)
    res = evaluate_source(estimator, source, pooling=proto.pooling, limit=n, progress=False,
                          desc="validation", on_frame=on_frame)
    solver = res["solver"]
    metrics = dict(res["summary"])
    metrics.update(zero_epe=zero.summary(proto.pooling)["epe"],
                   f_nstep=solver["nstep"]["mean"], f_rel=solver["rel_residual"]["mean"],
                   f_abs=solver["abs_residual"]["mean"], n_pairs=res["n_pairs"])
    return metrics, panels
