"""Fixed-point reuse on video: solver steps and EPE with and without reuse.

    python benchmarks/reuse.py --checkpoint runs/synth            # a training workdir or model dir
    python benchmarks/reuse.py --init tiny                        # random weights: plumbing only
    python benchmarks/reuse.py --checkpoint training/cpu_pretrain --dataset layered \
        --height 384 --width 512                                  # rendered layered video

For every sequence of the video set (`--dataset synthetic`, the default: the synthetic
dataset's video variant, validation split, built under --data-dir; `--dataset layered`:
`--sequences` videos of the layered renderer, `layered.render_sequence` with its
`VIDEO_CONFIG` on the held-out validation photographs, seed 0, rendered in memory),
each consecutive pair is solved three ways:

* none:  from scratch, z0 = (0, 0);
* warm:  flow-only warm start, z0 = (0, fwd(f*_prev))  (RAFT's warm start);
* reuse: fixed-point reuse, z0 = (h*_prev, fwd(f*_prev)) (DEQ-Flow);

fwd = forward interpolation. Reported per mode: mean solver steps to reach the
tolerance (f-evaluations until the residual first drops below --tol; the
budget when it never does), the fraction of pairs that converged, EPE and 1px (%)
as `deq-flow eval --dataset synthetic` computes them (`evaluate_source` with the
synthetic protocol's pooling), and the estimator's seconds per pair (compilation
excluded). The first pair of each sequence has nothing to reuse and is counted in
all modes alike. Both datasets go through the same `run_mode`, so their EPE is computed alike.
Prints one JSON object, then a table.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from deq_flow_jax.io.common import atomic_write_text, dumps_json  # noqa: E402
from deq_flow_jax.solvers import SOLVER_NAMES, STOP_MODES  # noqa: E402

MODES = ("none", "warm", "reuse")
DATASETS = ("synthetic", "layered")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="model directory or training workdir")
    src.add_argument("--init", metavar="VARIANT", help="random model of this variant (no meaning)")
    p.add_argument("--which", choices=("best", "latest"), default="best")
    p.add_argument("--dataset", choices=DATASETS, default="synthetic",
                   help="synthetic video (default) or rendered layered video")
    p.add_argument("--data-dir", default="/tmp/deq_flow_bench_data", help="synthetic only")
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--sequences", type=int, default=4, help="validation sequences")
    p.add_argument("--frames", type=int, default=10, help="frames per sequence")
    p.add_argument("--solver", default="anderson", choices=SOLVER_NAMES)
    p.add_argument("--max-steps", type=int, default=36)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--stop-mode", default="rel", choices=STOP_MODES)
    p.add_argument("--json", default=None, help="also write the JSON here (atomically)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --json file that this benchmark wrote")
    args = p.parse_args(argv)
    if args.sequences < 1:
        p.error(f"--sequences: must be >= 1, got {args.sequences}")
    if args.frames < 2:
        p.error(f"--frames: a sequence needs at least 2 frames, got {args.frames}")
    if args.dataset == "layered" and min(args.height, args.width) < 32:
        p.error(f"--height/--width: layered frames must be at least 32x32, got {args.height}x{args.width}")
    return args


def load(args):
    if args.checkpoint:
        from deq_flow_jax import checkpoints

        return checkpoints.load(args.checkpoint, args.which)[:2]
    import jax

    from deq_flow_jax.model import ModelConfig, init_model

    cfg = ModelConfig.variant(args.init)
    return init_model(cfg, jax.random.PRNGKey(0), (16, 16)), cfg


def sequences(args):
    """Yields (scene, [pair items in frame order]) for each sequence of `args.dataset`."""
    if args.dataset == "layered":
        from deq_flow_jax.data.layered import VIDEO_CONFIG
        from deq_flow_jax.data.layered_source import sequence_items

        cfg = VIDEO_CONFIG.replace(height=args.height, width=args.width)
        for index in range(args.sequences):
            items = sequence_items(index, cfg, args.frames)
            yield items[0]["meta"]["scene"], items
        return
    from deq_flow_jax.data import make_eval_source

    src = make_eval_source("synthetic_video", "validation", data_dir=args.data_dir,
                           height=args.height, width=args.width, num_train=0,
                           num_val=args.sequences, num_frames=args.frames)
    for scene, idx in src.sequences():
        yield scene, [src[i] for i in idx]


def run_mode(est, items, mode: str) -> dict:
    """One start mode over `items` (consecutive frames of each scene, in order).

    Metrics come from `evaluate_source` with the synthetic protocol's pooling: the numbers
    `deq-flow eval --dataset synthetic` prints for the same model, data and settings.
    """
    from deq_flow_jax.evaluate.protocols import PROTOCOLS, evaluate_source

    res = evaluate_source(est, items, pooling=PROTOCOLS["synthetic"].pooling, reuse=mode,
                          per_frame=True, progress=False, desc=f"reuse/{mode}")
    per_seq: dict = {}
    for r in res["frames"]:
        per_seq.setdefault(r["scene"], []).append(int(r["steps"]))
    frames = res["frames"]
    later = [s for v in per_seq.values() for s in v[1:]]
    return {"mean_steps": float(np.mean([r["steps"] for r in frames])),
            "mean_steps_after_first": float(np.mean(later)) if later else float("nan"),
            "converged": float(np.mean([r["converged"] for r in frames])),
            "epe": res["summary"]["epe"], "1px": res["summary"]["1px"],
            "seconds_per_pair": float(np.mean([r["seconds"] for r in frames])),
            "steps_per_sequence": per_seq}


def main(argv=None) -> dict:
    """Runs the benchmark and returns its report; a bad --checkpoint or --json is one line on
    stderr and exit status 2."""
    args = parse_args(argv)
    from deq_flow_jax.cli.common import CliError
    from deq_flow_jax.evaluate.estimator import FlowEstimator, SolverSettings
    from deq_flow_jax.evaluate.sequence import SequenceEstimator
    from deq_flow_jax.io.outputs import check_output_file, json_field

    try:
        if args.json:
            check_output_file(args.json, args.overwrite, "--json",
                              is_ours=lambda path: json_field(path, "benchmark") == "reuse")
        variables, cfg = load(args)
    except (ValueError, FileNotFoundError, CliError) as err:   # CliError: a bad --checkpoint
        print(f"benchmarks/reuse.py: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    settings = SolverSettings(args.solver, args.max_steps, args.tol, args.stop_mode)
    est = FlowEstimator(variables, cfg, settings)
    data = list(sequences(args))
    # compile every start kind once, outside the timings
    first = data[0][1]
    for mode in ("reuse", "warm"):
        seq = SequenceEstimator(est, mode)
        for it in first[:2]:
            seq(it["image1"][None], it["image2"][None])

    items = [it for _, seq_items in data for it in seq_items]
    results = {mode: run_mode(est, items, mode) for mode in MODES}
    base = results["none"]["mean_steps_after_first"]
    for mode in MODES:
        results[mode]["step_ratio_vs_none"] = results[mode]["mean_steps_after_first"] / base if base else float("nan")
    out = {"benchmark": "reuse", "model": cfg.name,
           "checkpoint": os.path.abspath(args.checkpoint) if args.checkpoint else f"random {args.init}",
           "settings": dataclasses.asdict(settings),
           "data": {"dataset": args.dataset, "height": args.height, "width": args.width, "sequences": len(data),
                    "pairs": sum(len(i) for _, i in data)},
           "results": results}
    print(dumps_json(out, default=float))
    if args.json:
        atomic_write_text(args.json, dumps_json(out, indent=1, default=float) + "\n")
    print()
    print(f"{'mode':<6} {'steps':>6} {'steps(2+)':>9} {'ratio':>6} {'conv':>5} {'EPE':>7} {'1px%':>6} {'s/pair':>7}")
    for mode in MODES:
        r = results[mode]
        print(f"{mode:<6} {r['mean_steps']:6.2f} {r['mean_steps_after_first']:9.2f} "
              f"{r['step_ratio_vs_none']:6.2f} {r['converged']:5.2f} {r['epe']:7.3f} "
              f"{r['1px']:6.1f} {r['seconds_per_pair']:7.3f}")
    return out


if __name__ == "__main__":
    main()
