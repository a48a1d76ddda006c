"""`deq-flow prepare DATASET`: build a TFDS dataset.

    deq-flow prepare synthetic --data-dir PATH [--variant pairs|video] [--num-train N]
                               [--num-val N] [--height H] [--width W] [--num-frames T] [--seed S]
    deq-flow prepare {chairs,things,sintel,kitti,hd1k,middlebury} --manual-dir PATH [--data-dir PATH]

Prints one line per prepared dataset (name, config, split sizes, directory, seconds)
and exits 0; a missing or incomplete manual dir prints what was expected where, and a
corrupt file (bad .flo / .pfm / KITTI PNG / image, or ground truth holding NaN or inf)
is named, with exit code 2. A failed build leaves no folder it created behind.
"""
from __future__ import annotations

import os
import time

from deq_flow_jax.cli.common import ArgumentParser, CliError, at_least, run_command

DEFAULT_DATA_DIR = os.environ.get("TFDS_DATA_DIR", os.path.join("~", "tensorflow_datasets"))
DATASETS = ("synthetic", "chairs", "things", "sintel", "kitti", "hd1k", "middlebury")


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow prepare", __doc__)
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", help="your copy of the benchmark (required except for synthetic)")
    p.add_argument("--config", action="append", help="only these configs (e.g. clean, final)")
    g = p.add_argument_group("synthetic")
    g.add_argument("--variant", choices=("pairs", "video"), default="pairs")
    g.add_argument("--num-train", type=at_least(0), help="scenes in train (default 1000 pairs / 40 videos)")
    g.add_argument("--num-val", type=at_least(0), help="scenes in validation (default 100 pairs / 8 videos)")
    g.add_argument("--height", type=at_least(16), default=96)
    g.add_argument("--width", type=at_least(16), default=128)
    g.add_argument("--num-frames", type=at_least(2), help="frames per video (default 10)")
    g.add_argument("--seed", type=at_least(0), default=0)
    return p


def _created_by(data_dir: str, build):
    """Runs build(); on any error removes the empty folders it left under `data_dir`.

    A failed TFDS build removes its own incomplete data but leaves the empty dataset /
    config folders it made (and `data_dir` itself when it was new). Only folders that did
    not exist before and are empty now are removed (bottom up), so a concurrent build of
    another dataset in the same `data_dir` is never touched.
    """
    data_dir = os.path.abspath(data_dir)
    chain, p = [], data_dir                    # data_dir and its missing parents
    while not os.path.exists(p) and os.path.dirname(p) != p:
        chain.append(p)
        p = os.path.dirname(p)
    before = _tree_dirs(data_dir) if not chain else set()
    try:
        return build()
    except BaseException:
        new = (_tree_dirs(data_dir) - before) if os.path.isdir(data_dir) else set()
        for d in sorted(new, key=len, reverse=True) + chain:   # deepest first
            try:
                os.rmdir(d)
            except OSError:
                pass                               # not empty, or already gone: keep it
        raise


def _tree_dirs(root: str) -> set:
    return {os.path.join(d, s) for d, subs, _ in os.walk(root) for s in subs}


def _report(builder, seconds: float) -> str:
    splits = ", ".join(f"{k}={v.num_examples}" for k, v in sorted(builder.info.splits.items()))
    config = builder.builder_config.name if builder.builder_config else "-"
    return f"{builder.name}/{config}: {splits} in {builder.data_dir} ({seconds:.1f} s)"


def main(argv: list[str]) -> int:
    return run_command("prepare", build_parser(), argv, _run)


def _run(args) -> int:
    import sys

    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    if not sys.stderr.isatty():   # progress bars only for a person watching
        import tensorflow_datasets as tfds
        tfds.disable_progress_bar()
    data_dir = os.path.expanduser(args.data_dir)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise CliError(f"--data-dir {data_dir}", "exists and is not a folder")
    start = time.perf_counter()
    if args.dataset == "synthetic":
        if args.manual_dir:
            raise CliError("--manual-dir", "synthetic data needs no --manual-dir")
        from deq_flow_jax.data.synthetic_tfds import ensure_synthetic
        builder = _created_by(data_dir, lambda: ensure_synthetic(
            data_dir, variant=args.variant, height=args.height, width=args.width,
            num_train=args.num_train, num_val=args.num_val, num_frames=args.num_frames, seed=args.seed))
        print(_report(builder, time.perf_counter() - start))
        return 0
    if not args.manual_dir:
        raise CliError("--manual-dir", f"{args.dataset} needs --manual-dir PATH (your downloaded copy)")
    import data_prep
    builders = _created_by(data_dir, lambda: data_prep.prepare(args.dataset, args.manual_dir, data_dir,
                                                               configs=args.config))
    seconds = time.perf_counter() - start
    for b in builders:
        print(_report(b, seconds))
    return 0
