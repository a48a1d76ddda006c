"""`deq-flow eval --checkpoint DIR --dataset NAME`: official validation protocols.

Datasets: chairs (validation), things (test, clean + final, with and without the
mask), sintel (training, clean + final), kitti (training: EPE, F1-all), middlebury
(the eight pairs with ground truth: EPE per pair averaged, 1/3/5 px), synthetic
(validation), and the rendered layered and photo_pairs (no download). The others
are read from `deq-flow prepare NAME --manual-dir YOUR_COPY`.

Instead of --dataset, --pairs LIST scores your own pairs: a text file, one pair per line,
`FRAME1 FRAME2 FLOW` (paths relative to the list; flow .flo, .pfm or KITTI's 16-bit
.png; EPE per pair averaged, 1/3/5 px, Fl-all). --baseline dis-medium (or farneback,
zero) scores a classical method instead of a model on the same pairs, for comparison.

Prints a table, writes a JSON file of results (--out), optionally with per-frame
statistics (--per-frame) and side-by-side panels of the first frames (--panels DIR).

With --submit DIR and --dataset sintel or kitti, writes a test-set submission
instead (Sintel: clean/ and final/ .flo files along each scene with fixed-point
reuse; KITTI: flow/*.png).

Outputs never overlap --checkpoint or --data-dir; --overwrite replaces only a results
file or folder that deq-flow wrote. The results JSON is strict: a metric that cannot be
computed is null, listed under "non_finite".
"""
from __future__ import annotations

import dataclasses
import os
import sys

from deq_flow_jax.cli import model_args
from deq_flow_jax.cli.common import (
    ArgumentParser,
    CliError,
    at_least,
    positive,
    run_command,
)
from deq_flow_jax.cli.prepare import DEFAULT_DATA_DIR
from deq_flow_jax.evaluate.baselines import BASELINES
from deq_flow_jax.evaluate.protocols import PROTOCOLS

RESULTS_TOOL = "deq-flow eval"
DATASETS = sorted(set(PROTOCOLS) - {"pairs"})     # "pairs" is --pairs LIST
# flags that choose or tune a model, refused with --baseline (argparse dest, flag)
MODEL_FLAGS = (("checkpoint", "--checkpoint"), ("solver", "--solver"), ("max_steps", "--max-steps"),
               ("f_thres", "--f-thres"), ("eval_factor", "--eval-factor"), ("tol", "--tol"),
               ("stop_mode", "--stop-mode"), ("refine", "--refine"), ("start", "--start"))


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow eval", __doc__)
    model_args.add_model_args(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", choices=DATASETS)
    which.add_argument("--pairs", default=None, metavar="LIST", type=os.path.expanduser,
                       help="score your own pairs instead: a text file, one pair per line, "
                            "'FRAME1 FRAME2 FLOW' (paths relative to the list; flow .flo, .pfm "
                            "or KITTI 16-bit .png; docs/evaluation.md)")
    p.add_argument("--baseline", choices=BASELINES, default=None,
                   help="score a classical method instead of a model: OpenCV's DIS (preset "
                        "medium), Farneback, or zero flow (no --checkpoint or solver flags)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=os.path.expanduser,
                   help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets, "
                        "where `deq-flow prepare` and the training configs put datasets)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="results JSON (default eval_<dataset>.json, eval_pairs.json with --pairs; "
                        "must not exist)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs that deq-flow wrote (nothing else)")
    model_args.add_solver_args(p)
    p.add_argument("--reuse", choices=("none", "reuse", "warm"), default="none",
                   help="start from the previous pair's fixed point along each scene "
                        "(default none, as the official protocols)")
    p.add_argument("--limit", type=at_least(1), default=None, help="evaluate only the first N pairs per pass")
    p.add_argument("--per-frame", action="store_true", help="store per-frame metrics and solver stats")
    p.add_argument("--panels", default=None, metavar="DIR",
                   help="write frame | prediction | ground truth | error panels here")
    p.add_argument("--num-panels", type=at_least(1), default=4, help="panels per pass (default 4)")
    p.add_argument("--max-flow", type=positive, default=400.0, help="|gt| cut-off of masked metrics")
    p.add_argument("--max-size", type=at_least(0), default=0, metavar="N",
                   help="estimate frames whose longer side exceeds N px at N and upsample the flow "
                        "(scored at the frames' size); default 0: every frame at its own size, as "
                        "the official protocols. With --pairs, a run whose largest pair would not "
                        "fit in memory is refused first")
    p.add_argument("--synthetic-size", type=at_least(16), nargs=2, default=None, metavar=("H", "W"),
                   help="synthetic dataset image size (default: the builder's)")
    p.add_argument("--synthetic-num-val", type=at_least(1), default=None, help="synthetic validation pairs")
    p.add_argument("--synthetic-num-train", type=at_least(0), default=None,
                   help="synthetic training pairs of the dataset to open (names the build)")
    p.add_argument("--submit", default=None, metavar="DIR",
                   help="write a Sintel or KITTI test submission to DIR instead of validating")
    p.add_argument("--no-progress", action="store_true")
    return p


def _source_factory(args):
    from deq_flow_jax.data import make_eval_source

    def factory(name, split, *, data_dir, **kw):
        if name == "pairs":
            from deq_flow_jax.data.pair_list import PairListSource
            return PairListSource(args.pairs)
        if name == "synthetic":
            if args.synthetic_size:
                kw["height"], kw["width"] = args.synthetic_size
            if args.synthetic_num_val is not None:
                kw["num_val"] = args.synthetic_num_val
            if args.synthetic_num_train is not None:
                kw["num_train"] = args.synthetic_num_train
        return make_eval_source(name, split, data_dir=data_dir, **kw)
    return factory


def _submit(args, variables, cfg, settings) -> int:
    from deq_flow_jax.data import make_eval_source
    from deq_flow_jax.evaluate.estimator import FlowEstimator
    from deq_flow_jax.evaluate.submission import (
        write_kitti_submission,
        write_sintel_submission,
    )

    progress = not args.no_progress
    if args.dataset == "sintel":
        sources = {d: make_eval_source("sintel", "test", data_dir=args.data_dir, dstype=d)
                   for d in ("clean", "final")}
        est = FlowEstimator(variables, cfg, settings, pad_mode="sintel")
        mode = args.reuse if args.reuse != "none" else "reuse"
        res = write_sintel_submission(est, sources, args.submit, reuse=mode, overwrite=args.overwrite,
                                      limit=args.limit, progress=progress)
    else:
        source = make_eval_source("kitti", "test", data_dir=args.data_dir)
        est = FlowEstimator(variables, cfg, settings, pad_mode="kitti")
        res = write_kitti_submission(est, source, args.submit, overwrite=args.overwrite,
                                     limit=args.limit, progress=progress)
    from deq_flow_jax.io import dumps_json

    print(dumps_json(res, indent=1))
    return 0


def _is_results_file(path: str) -> bool:
    from deq_flow_jax.io.outputs import json_field

    return json_field(path, "tool") == RESULTS_TOOL


def _check_outputs(args, out: str | None) -> None:
    """Every output path is usable and overlaps no input, before any work."""
    from deq_flow_jax.io.outputs import (
        check_no_overlap,
        check_output_dir,
        check_output_file,
    )

    inputs = [("--checkpoint", args.checkpoint), ("--data-dir", args.data_dir), ("--pairs", args.pairs)]
    if args.submit is not None:
        check_no_overlap(args.submit, "--submit", inputs)
        check_output_dir(args.submit, args.overwrite, "--submit")
        return
    check_no_overlap(out, "--out", inputs)
    check_no_overlap(out, "--out", [("--panels", args.panels)], what="output")
    check_output_file(out, args.overwrite, "--out", is_ours=_is_results_file)
    if args.panels:
        check_no_overlap(args.panels, "--panels", inputs)
        check_output_dir(args.panels, args.overwrite, "--panels")


def _check_baseline(args) -> None:
    """--baseline scores a classical method: no model flags, no reuse, no submission."""
    if args.baseline is None:
        return
    given = [flag for dest, flag in MODEL_FLAGS if getattr(args, dest) is not None]
    if given:
        raise CliError("--baseline", f"scores a classical method, not a model; drop {', '.join(given)}")
    if args.max_size:
        raise CliError("--max-size", f"sets the model's working size; --baseline {args.baseline} "
                                     "estimates at the frames' own size")
    if args.reuse != "none":
        raise CliError("--reuse", f"starts a model's solver from the previous pair; --baseline "
                                  f"{args.baseline} has none")
    if args.submit is not None:
        raise CliError("--submit", "writes a model's test-set submission; drop --baseline")


def _run(args) -> int:
    from deq_flow_jax.evaluate.protocols import format_table, run_protocol

    if args.pairs is not None:
        args.dataset = "pairs"
        if args.reuse != "none":
            raise CliError("--reuse", "starts each pair from the previous one along a scene; the "
                                      "pairs of a --pairs list are independent")
    _check_baseline(args)
    if args.submit is not None:
        if args.dataset not in ("sintel", "kitti"):
            what = "--pairs" if args.pairs is not None else f"--dataset {args.dataset}"
            raise CliError("--submit", f"writes Sintel or KITTI submissions; got {what}")
        if args.max_size:
            raise CliError("--max-size", "a submission is estimated at the frames' own size")
        _check_outputs(args, None)
        variables, cfg, settings = model_args.load_model_and_settings(args)
        return _submit(args, variables, cfg, settings)

    if 0 < args.max_size < 32:
        raise CliError("--max-size", f"must be 0 (off) or at least 32; got {args.max_size}")
    out = args.out or f"eval_{args.dataset}.json"
    _check_outputs(args, out)
    source_factory = _source_factory(args)
    if args.pairs is not None:          # the list and its files are checked before any model loads
        source = source_factory("pairs", "validation", data_dir=args.data_dir)
        source_factory = lambda name, split, *, data_dir, **kw: source  # noqa: E731
        if args.baseline is None:
            from deq_flow_jax.evaluate.estimator import working_size

            k = max(range(len(source)), key=lambda i: source.sizes[i][0] * source.sizes[i][1])
            model_args.check_memory(source.pairs[k][2][0], source.sizes[k],
                                    working_size(*source.sizes[k], args.max_size))
    make_estimator, record, how = _method(args)
    on_frame, panels_dir = None, None
    if args.panels:
        from deq_flow_jax.io.outputs import StagedDir

        panels_dir = StagedDir(args.panels, args.overwrite, command="eval --panels", flag="--panels")
        on_frame = _panel_writer(panels_dir.path, args.num_panels)
    try:
        result = run_protocol(make_estimator, args.dataset, data_dir=args.data_dir,
                              source_factory=source_factory, reuse=args.reuse, limit=args.limit,
                              max_flow=args.max_flow, per_frame=args.per_frame,
                              progress=not args.no_progress, on_frame=on_frame)
    except BaseException:
        if panels_dir is not None:
            panels_dir.discard()
        raise
    if panels_dir is not None:
        panels_dir.commit()
    result = {"tool": RESULTS_TOOL, **result, **record, "reuse": args.reuse, "limit": args.limit,
              "pairs": args.pairs and os.path.abspath(args.pairs)}
    from deq_flow_jax.io import atomic_write_json

    atomic_write_json(out, result)
    print(f"{f'pairs of {args.pairs}' if args.pairs is not None else args.dataset}: {how}")
    print(format_table(result))
    print(f"results -> {out}", file=sys.stderr)
    return 0


def _method(args):
    """(callable(pad_mode) -> estimator, the results JSON's record of the method, a line
    saying what runs): the model of --checkpoint with its settings, or a --baseline."""
    if args.baseline is not None:
        from deq_flow_jax.evaluate.baselines import BaselineEstimator

        record = {"method": args.baseline, "checkpoint": None, "model": None, "settings": None,
                  "max_size": None}
        return (lambda pad: BaselineEstimator(args.baseline)), record, \
            f"baseline {args.baseline} ({'zero flow' if args.baseline == 'zero' else 'OpenCV'}, no model)"
    from deq_flow_jax.evaluate.estimator import FlowEstimator

    variables, cfg, settings = model_args.load_model_and_settings(args)
    record = {"method": "model", "checkpoint": args.checkpoint and os.path.abspath(args.checkpoint),
              "model": cfg.to_dict(), "settings": dataclasses.asdict(settings)}
    how = (f"solver {settings.solver}, budget {settings.max_steps}, tol {settings.tol} "
           f"({settings.stop_mode}), refine {settings.refine}, start {settings.start}")
    if args.max_size:
        how += f", frames over {args.max_size} px estimated at {args.max_size}"
    estimator = lambda pad: FlowEstimator(variables, cfg, settings, pad_mode=pad,  # noqa: E731
                                          max_size=args.max_size or None)
    return estimator, {**record, "max_size": args.max_size or None}, how


def _panel_writer(directory: str, count: int):
    from deq_flow_jax import io
    from deq_flow_jax.evaluate import flow_colors

    seen: dict = {}

    def on_frame(i, item, est):
        label = item.get("meta", {}).get("dataset", "pass")
        n = seen.get(label, 0)
        if n >= count:
            return
        seen[label] = n + 1
        panel = flow_colors.flow_panel(item["image1"], est.flow[0], item.get("flow"), item.get("valid"))
        io.write_image(os.path.join(directory, f"{label}_{i:05d}.png"), panel)
    return on_frame


def main(argv: list[str]) -> int:
    return run_command("eval", build_parser(), argv, _run)
