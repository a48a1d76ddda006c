"""Data benchmarks: synthetic generation, dataset build, training-loader throughput.

    PYTHONPATH=$PWD python benchmarks/data.py [--num-train 200] [--batches 20] [--workers 0 2]

Prints one JSON object, then a human-readable table. Times are wall-clock seconds on
whatever machine runs it (CPU-bound numpy/OpenCV work; nothing runs on an accelerator).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--num-train", type=int, default=200)
    p.add_argument("--num-val", type=int, default=20)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--crop", type=int, nargs=2, default=(80, 112))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args()

    from absl import flags
    flags.FLAGS.mark_as_parsed()
    from deq_flow_jax.data import SceneConfig, ensure_synthetic, generate_scene, make_train_loader

    results = {"config": vars(args), "cpu_count": os.cpu_count()}
    cfg = SceneConfig(height=args.height, width=args.width)
    t = time.perf_counter()
    for i in range(50):
        generate_scene(i, cfg)
    results["scene_ms"] = 1000 * (time.perf_counter() - t) / 50

    with tempfile.TemporaryDirectory() as data_dir:
        syn = dict(height=args.height, width=args.width, num_train=args.num_train, num_val=args.num_val)
        t = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # TFDS prints progress on stdout
            ensure_synthetic(data_dir, **syn)
        results["build_s"] = time.perf_counter() - t
        results["build_ms_per_example"] = 1000 * results["build_s"] / (args.num_train + args.num_val)
        for w in args.workers:
            with contextlib.redirect_stdout(sys.stderr):
                loader = make_train_loader("synthetic", data_dir=data_dir, crop_size=tuple(args.crop),
                                           global_batch_size=args.batch, seed=0, num_workers=w,
                                           synthetic=syn)
            it = iter(loader)
            t = time.perf_counter()
            next(it)
            first = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(args.batches):
                next(it)
            dt = time.perf_counter() - t
            results[f"loader_w{w}"] = {"first_batch_s": first, "batches_per_s": args.batches / dt,
                                       "examples_per_s": args.batches * args.batch / dt}
            del it
    print(json.dumps(results, indent=1))
    print("\n| measure | value |\n|---|---|")
    print(f"| synthetic scene {args.height}x{args.width} | {results['scene_ms']:.1f} ms |")
    print(f"| build {args.num_train}+{args.num_val} examples | {results['build_s']:.1f} s "
          f"({results['build_ms_per_example']:.1f} ms/example) |")
    for w in args.workers:
        r = results[f"loader_w{w}"]
        print(f"| loader, {w} workers, batch {args.batch}, crop {args.crop[0]}x{args.crop[1]} | "
              f"{r['examples_per_s']:.0f} examples/s (first batch {r['first_batch_s']:.1f} s) |")


if __name__ == "__main__":
    main()
