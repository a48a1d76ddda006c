"""`deq-flow prepare DATASET`: build a TFDS dataset.

    deq-flow prepare synthetic --data-dir PATH [--variant pairs|video] [--num-train N]
                               [--num-val N] [--height H] [--width W] [--num-frames T] [--seed S]
    deq-flow prepare {chairs,things,sintel,kitti,hd1k} --manual-dir PATH [--data-dir PATH]

Prints one line per prepared dataset (name, config, split sizes, directory, seconds)
and exits 0; a missing or incomplete manual dir prints what was expected where and
exits 1.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_DATA_DIR = os.environ.get("TFDS_DATA_DIR", os.path.join("~", "tensorflow_datasets"))
DATASETS = ("synthetic", "chairs", "things", "sintel", "kitti", "hd1k")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deq-flow prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", help="your copy of the benchmark (required except for synthetic)")
    p.add_argument("--config", action="append", help="only these configs (e.g. clean, final)")
    g = p.add_argument_group("synthetic")
    g.add_argument("--variant", choices=("pairs", "video"), default="pairs")
    g.add_argument("--num-train", type=int, help="scenes in train (default 1000 pairs / 40 videos)")
    g.add_argument("--num-val", type=int, help="scenes in validation (default 100 pairs / 8 videos)")
    g.add_argument("--height", type=int, default=96)
    g.add_argument("--width", type=int, default=128)
    g.add_argument("--num-frames", type=int, help="frames per video (default 10)")
    g.add_argument("--seed", type=int, default=0)
    return p


def _report(builder, seconds: float) -> str:
    splits = ", ".join(f"{k}={v.num_examples}" for k, v in sorted(builder.info.splits.items()))
    config = builder.builder_config.name if builder.builder_config else "-"
    return f"{builder.name}/{config}: {splits} in {builder.data_dir} ({seconds:.1f} s)"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    data_dir = os.path.expanduser(args.data_dir)
    start = time.perf_counter()
    if args.dataset == "synthetic":
        if args.manual_dir:
            print("deq-flow prepare: synthetic data needs no --manual-dir", file=sys.stderr)
            return 2
        from deq_flow_jax.data.synthetic_tfds import ensure_synthetic
        try:
            builder = ensure_synthetic(data_dir, variant=args.variant, height=args.height,
                                       width=args.width, num_train=args.num_train,
                                       num_val=args.num_val, num_frames=args.num_frames,
                                       seed=args.seed)
        except ValueError as e:
            print(f"deq-flow prepare: {e}", file=sys.stderr)
            return 2
        print(_report(builder, time.perf_counter() - start))
        return 0
    if not args.manual_dir:
        print(f"deq-flow prepare: {args.dataset} needs --manual-dir PATH (your downloaded copy)",
              file=sys.stderr)
        return 2
    import data_prep
    try:
        builders = data_prep.prepare(args.dataset, args.manual_dir, data_dir, configs=args.config)
    except data_prep.ManualDirError as e:
        print(f"deq-flow prepare: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    for b in builders:
        print(_report(b, seconds))
    return 0
