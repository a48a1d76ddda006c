"""Evaluation, inference, submissions and export (contract 6 of docs/DESIGN.md).

Modules, one idea each:
  interpolate  forward interpolation of the previous flow (warm start / fixed-point reuse)
  estimator    FlowEstimator: numpy in, numpy out, solver statistics (SolverSettings)
  sequence     SequenceEstimator / run_sequence: reuse, warm start or none along frames
  aggregate    MetricAccumulator: pools of pixels and the pooling rules (all, masked, per_image)
               over the metrics of `deq_flow_jax.metrics`
  protocols    chairs / things / sintel / kitti / middlebury / synthetic / your own listed pairs:
               validation protocols (also the training loop's validation)
  baselines    zero flow, OpenCV's DIS medium and Farneback behind the estimator interface
  flow_colors  the Middlebury colour wheel, error maps and side-by-side panels
  inputs       user frames: images, folders, videos, validated (InputError)
  video        MP4 / GIF writer
  infer        infer_frames: .flo / .npy / colour PNG / video / stats.json
  submission   Sintel and KITTI test-set writers
  export       jax.export serialisation of inference
  (their flags live in deq_flow_jax/cli/model_args.py)
"""
from deq_flow_jax.evaluate.aggregate import MetricAccumulator
from deq_flow_jax.evaluate.estimator import Estimate, FlowEstimator, SolverSettings
from deq_flow_jax.evaluate.inputs import InputError, open_frames
from deq_flow_jax.evaluate.interpolate import forward_interpolate
from deq_flow_jax.evaluate.sequence import REUSE_MODES, SequenceEstimator, run_sequence

__all__ = ["MetricAccumulator", "Estimate", "FlowEstimator", "SolverSettings", "InputError",
           "open_frames", "forward_interpolate", "REUSE_MODES", "SequenceEstimator", "run_sequence"]
