"""`deq-flow demo` (what `make demo` runs): data, training, evaluation and plots on the CPU.

    deq-flow demo --workdir runs/demo [--config deq_flow_jax/configs/demo.py]
        [--config.num_steps=300] [--num_viz 4]

1. builds the synthetic dataset (`ensure_synthetic`) if it is not there yet;
2. trains a tiny DEQ-Flow with `train_and_evaluate` (rerunning resumes);
3. evaluates the best checkpoint on all synthetic validation pairs;
4. writes flow visualisations (`viz/pair_XX.png`: frame, prediction, ground truth, error)
   and the training curves (`training_curves.png`) into the workdir;
5. prints the final validation EPE next to the zero-flow EPE and saves `demo_result.json`.
"""
from __future__ import annotations

import os
import time

from deq_flow_jax.cli.common import ArgumentParser, at_least, run_command
from deq_flow_jax.cli.config_args import add_config_arg, parse_config_command

# inside the installed package, not the repository: `deq-flow demo` works from any directory
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "configs", "demo.py")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow demo", __doc__)
    add_config_arg(p, DEFAULT_CONFIG, "training config file")
    p.add_argument("--workdir", default="runs/demo", help="demo workdir (training workdir + plots)")
    p.add_argument("--num_viz", type=at_least(0), default=4, help="validation pairs drawn into viz/")
    return p


def _evaluate(workdir: str, config, num_viz: int) -> dict:
    """Evaluates the best checkpoint on all validation pairs; writes viz/pair_XX.png.

    Metrics are those of the training loop's validation (`deq_flow_jax.train.validate`, i.e.
    the evaluation protocol of the validation set, as `deq-flow eval` computes them), with
    `deq.f_max_steps * eval_factor` solver steps.
    """
    import numpy as np

    from deq_flow_jax import checkpoints, io
    from deq_flow_jax.evaluate import flow_colors
    from deq_flow_jax.train.config import deq_config, validation_source
    from deq_flow_jax.train.validate import validate

    variables, cfg = checkpoints.load(workdir, which="best")[:2]
    data = config.data
    src = validation_source(data)
    metrics, panels = validate(variables, cfg, deq_config(config), src,
                               dataset=data.val_dataset, max_examples=0, num_images=num_viz)
    os.makedirs(os.path.join(workdir, "viz"), exist_ok=True)
    for i, (image1, pred, gt) in enumerate(panels):
        panel = flow_colors.flow_panel(np.asarray(image1, np.uint8), pred, gt)
        io.write_image(os.path.join(workdir, "viz", f"pair_{i:02d}.png"), panel)
    return {k: float(v) for k, v in metrics.items()} | {"pairs": len(src)}


def main(argv: list[str]) -> int:
    parse = lambda a: parse_config_command(build_parser(), a, (), lock=False)  # noqa: E731
    return run_command("demo", parse, argv, _run)


def _run(fv) -> int:
    from deq_flow_jax.io.outputs import claim_workdir

    config = fv.config
    workdir = claim_workdir(fv.workdir, "demo")       # new, empty, or an earlier demo's
    t_start = time.time()
    timings = {}

    from deq_flow_jax.data import ensure_synthetic

    t0 = time.time()
    data_dir = os.path.expanduser(config.data.data_dir)
    print(f"[demo] 1/4 synthetic dataset in {data_dir}", flush=True)
    ensure_synthetic(data_dir, **dict(config.data.get("synthetic", None) or {}))
    timings["data_s"] = time.time() - t0

    from deq_flow_jax.train import train_and_evaluate

    t0 = time.time()
    print(f"[demo] 2/4 training a {config.model.variant} DEQ-Flow for {config.num_steps} steps "
          f"(batch {config.batch_size}, crops {tuple(config.data.crop_size)}) in {workdir}", flush=True)
    final = train_and_evaluate(config, workdir)
    timings["train_s"] = time.time() - t0

    t0 = time.time()
    print("[demo] 3/4 evaluating the best checkpoint on the validation pairs", flush=True)
    metrics = _evaluate(workdir, config, fv.num_viz)
    timings["eval_s"] = time.time() - t0

    t0 = time.time()
    print("[demo] 4/4 plotting the training curves", flush=True)
    from deq_flow_jax.train.curves import plot_training_curves

    curves = plot_training_curves(os.path.join(workdir, "train.jsonl"),
                                  os.path.join(workdir, "training_curves.png"), title="make demo")
    timings["plot_s"] = time.time() - t0
    timings["total_s"] = time.time() - t_start

    result = {"validation": metrics, "train_and_evaluate": {k: float(v) for k, v in dict(final or {}).items()
                                                             if isinstance(v, (int, float))},
              "timings": timings, "training_curves": curves, "viz": os.path.join(workdir, "viz")}
    from deq_flow_jax.io import atomic_write_json
    atomic_write_json(os.path.join(workdir, "demo_result.json"), result, indent=2)
    drop = 100.0 * (1.0 - metrics["epe"] / max(metrics["zero_epe"], 1e-9))
    print("")
    print(f"validation EPE {metrics['epe']:.3f} px   (zero-flow EPE {metrics['zero_epe']:.3f} px, "
          f"{abs(drop):.0f}% {'lower' if drop >= 0 else 'higher'}) on {metrics['pairs']} "
          "synthetic validation pairs")
    print(f"1px {metrics['1px']:.1f}%  3px {metrics['3px']:.1f}%  5px {metrics['5px']:.1f}%  "
          f"Fl-all {metrics['fl_all']:.1f}%")
    print(f"time: data {timings['data_s']:.0f} s, training {timings['train_s']:.0f} s, "
          f"evaluation {timings['eval_s']:.0f} s, total {timings['total_s']:.0f} s")
    print(f"outputs: {curves}, {os.path.join(workdir, 'viz')}/pair_XX.png, "
          f"TensorBoard: tensorboard --logdir {os.path.join(workdir, 'tb')}")
    return 0
