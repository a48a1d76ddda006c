"""`deq-flow infer INPUT... [--checkpoint DIR] --out DIR`: flow on your own frames or video.

INPUT is two (or more) image files, one folder of frames (sorted by name) or one
video file. Writes flow/<frame>.flo (and .npy with --npy), color/<frame>.png,
flow.mp4 or flow.gif (frame beside its colour flow) and stats.json, and prints
the mean solver steps per pair. Consecutive pairs reuse the previous fixed point
(forward-interpolated flow and GRU state) unless --no-reuse.

Every input is checked (and every frame decoded once) before the model is loaded;
the output must not overlap an input; --overwrite replaces only a folder that
deq-flow wrote; a non-finite flow stops the run naming the pair, and nothing is written.
"""
from __future__ import annotations

import sys

from deq_flow_jax.cli import model_args
from deq_flow_jax.cli.common import ArgumentParser, CliError, at_least, positive, run_command

# The longer side the model works at by default: a 1080p frame becomes 576x1024 (about 2 GB
# and 10-20 s per pair on 2 CPU cores); at its own size it would need ~15 GB and minutes.
DEFAULT_MAX_SIZE = 1024


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow infer", __doc__)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images, a folder of frames, or a video")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must not exist)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output folder written by deq-flow (nothing else)")
    model_args.add_model_args(p)
    model_args.add_solver_args(p)
    g = p.add_argument_group("sequence")
    g.add_argument("--reuse", choices=("reuse", "warm", "none"), default="reuse",
                   help="start each pair from the previous fixed point (reuse, default), from its "
                        "flow only (warm), or from scratch (none)")
    g.add_argument("--no-reuse", action="store_const", const="none", dest="reuse",
                   help="same as --reuse none")
    g.add_argument("--compare", action="store_true",
                   help="also run without reuse (or with, given --no-reuse) and report both step counts")
    g.add_argument("--batch-size", type=at_least(1), default=1, help="pairs per call (needs --no-reuse)")
    g.add_argument("--max-frames", type=at_least(2), default=None, help="use only the first N frames (>= 2)")
    g.add_argument("--pad-mode", choices=("sintel", "kitti"), default="sintel")
    g.add_argument("--max-size", type=at_least(0), default=DEFAULT_MAX_SIZE, metavar="N",
                   help="frames whose longer side exceeds N px are downscaled for the model and "
                        "the flow is upsampled back to the frame size (default %(default)s; "
                        "0: always the frames' own size). Memory grows with the square of the "
                        "pixel count: a run that would not fit is refused before it starts")
    o = p.add_argument_group("outputs")
    o.add_argument("--npy", action="store_true", help="also write flow as .npy")
    o.add_argument("--no-flo", action="store_true", help="do not write .flo files")
    o.add_argument("--no-color", action="store_true", help="do not write colour PNGs")
    o.add_argument("--video", choices=("auto", "mp4", "gif", "none"), default="auto",
                   help="frame + colour flow video (auto: mp4 when there are 2+ pairs)")
    o.add_argument("--fps", type=positive, default=None, help="video frame rate (default: input's, else 10)")
    o.add_argument("--max-flow", type=positive, default=None,
                   help="colour-scale magnitude in px (default: each frame's maximum)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _run(args) -> int:
    from deq_flow_jax.evaluate.estimator import FlowEstimator, working_size
    from deq_flow_jax.evaluate.infer import InferOptions, infer_frames
    from deq_flow_jax.evaluate.inputs import open_frames
    from deq_flow_jax.io.outputs import check_no_overlap, check_output_dir

    if args.batch_size > 1 and args.reuse != "none":
        raise CliError("--batch-size", "more than 1 pair per call needs --no-reuse "
                                       "(reuse chains the pairs one by one)")
    if 0 < args.max_size < 32:
        raise CliError("--max-size", f"must be 0 (off) or at least 32; got {args.max_size}")
    options = InferOptions(reuse=args.reuse, batch_size=args.batch_size, write_flo=not args.no_flo,
                           write_npy=args.npy, write_color=not args.no_color, video=args.video,
                           fps=args.fps, max_flow=args.max_flow, compare=args.compare,
                           overwrite=args.overwrite)
    # cheap checks first, no model loaded yet: the output, then every input frame
    check_no_overlap(args.out, "--out", [("INPUT", p) for p in args.inputs]
                     + [("--checkpoint", args.checkpoint)])
    check_output_dir(args.out, args.overwrite, "--out")
    frames = open_frames(args.inputs, args.max_frames)
    if frames.skipped:
        shown = ", ".join(frames.skipped[:8]) + (", ..." if len(frames.skipped) > 8 else "")
        print(f"deq-flow infer: warning: {args.inputs[0]}: {len(frames.skipped)} file(s) without an "
              f"image extension skipped: {shown}", file=sys.stderr)
    work = working_size(*frames.size, args.max_size)
    model_args.check_memory(frames.paths[0], frames.size, work, args.batch_size)
    variables, cfg, settings = model_args.load_model_and_settings(args)
    estimator = FlowEstimator(variables, cfg, settings, pad_mode=args.pad_mode, max_size=args.max_size)
    summary = infer_frames(estimator, frames, args.out, options, progress=not args.no_progress)
    print(f"{summary['n_pairs']} pair(s) of {frames.size[0]}x{frames.size[1]} -> {args.out}")
    if work != tuple(frames.size):
        print(f"estimated at {work[0]}x{work[1]} (--max-size {args.max_size}), flow upsampled to "
              f"{frames.size[0]}x{frames.size[1]}")
    print(f"solver {settings.solver}, budget {settings.max_steps}, tol {settings.tol} ({settings.stop_mode}); "
          f"reuse: {options.reuse}; refine: {settings.refine}; start: {settings.start}")
    steps = " ".join(str(r["steps"]) for r in summary["pairs"])
    print(f"steps per pair: {steps}  (mean {summary['mean_steps']:.2f})")
    if "compare" in summary:
        c = summary["compare"]
        print(f"steps per pair with reuse={c['reuse']}: {' '.join(map(str, c['steps']))}  "
              f"(mean {c['mean_steps']:.2f})")
    return 0


def main(argv: list[str]) -> int:
    return run_command("infer", build_parser(), argv, _run)
