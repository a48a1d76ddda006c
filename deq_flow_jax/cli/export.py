"""`deq-flow export --checkpoint DIR --out FILE --height H --width W`: serialise inference.

Writes FILE (a `jax.export` serialisation: weights, fixed input shape
(B, H, W, 3) and fixed solver budget baked in) and FILE.json describing its
inputs and outputs. Reload anywhere JAX runs, without this package:

    exp = jax.export.deserialize(bytearray(open(FILE, "rb").read()))
    flow, flow_lowres, hidden, nstep, abs_res, rel_res = exp.call(image1, image2)

--check reloads the file, runs it on random frames and compares with the model.
--overwrite replaces FILE only if it is an export that deq-flow wrote (FILE.json says so);
the output may not overlap --checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import os

from deq_flow_jax.cli import model_args
from deq_flow_jax.cli.common import ArgumentParser, CliError, at_least, run_command

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")   # what jax.export lowers for


def platform_list(text: str) -> list[str]:
    """argparse type: comma-separated names from PLATFORMS, no repeats."""
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in PLATFORMS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown platform {bad[0]!r}; choose from {', '.join(PLATFORMS)}"
                                         if bad else "give at least one platform")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a platform is listed twice: {text}")
    return names


def build_parser() -> ArgumentParser:
    p = ArgumentParser("deq-flow export", __doc__)
    model_args.add_model_args(p)
    p.add_argument("--out", required=True, metavar="FILE", help="serialised output file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing export written by deq-flow (nothing else)")
    p.add_argument("--height", type=at_least(16), required=True, help="input height in pixels (>= 16)")
    p.add_argument("--width", type=at_least(16), required=True, help="input width in pixels (>= 16)")
    p.add_argument("--batch", type=at_least(1), default=1, help="pairs per call (default 1)")
    p.add_argument("--pad-mode", choices=("sintel", "kitti"), default="sintel")
    p.add_argument("--platforms", type=platform_list, default=None,
                   help=f"comma-separated lowering platforms from {', '.join(PLATFORMS)} "
                        "(default: this backend)")
    p.add_argument("--check", action="store_true", help="reload and compare with the model")
    model_args.add_solver_args(p, refine=False)
    return p


def _is_export(path: str) -> bool:
    """True if `path` is an export deq-flow wrote: its FILE.json names our format."""
    from deq_flow_jax.evaluate.export import FORMAT
    from deq_flow_jax.io.outputs import json_field

    return json_field(path + ".json", "format") == FORMAT


def _run(args) -> int:
    import numpy as np

    from deq_flow_jax.evaluate.estimator import FlowEstimator
    from deq_flow_jax.evaluate.export import (
        export_inference,
        load_exported,
        run_exported,
        save_exported,
    )
    from deq_flow_jax.io.outputs import check_no_overlap, check_output_file

    check_no_overlap(args.out, "--out", [("--checkpoint", args.checkpoint)])
    check_output_file(args.out, args.overwrite, "--out", is_ours=_is_export)
    check_output_file(args.out + ".json", args.overwrite, "--out (its .json)", is_ours=lambda p: _is_export(args.out))
    platforms = args.platforms
    variables, cfg, settings = model_args.load_model_and_settings(args)
    if settings.refine != "none":
        print(f"note: the checkpoint is meant to be run with --refine {settings.refine}, which is "
              "OpenCV post-processing and not part of the exported function; apply "
              f"deq_flow_jax.refine_flow(image1, image2, flow, {settings.refine!r}) to its flow")
        settings = dataclasses.replace(settings, refine="none")
    exported = export_inference(variables, cfg, height=args.height, width=args.width,
                                batch=args.batch, settings=settings, pad_mode=args.pad_mode,
                                platforms=platforms)
    meta = {"model": cfg.to_dict(), "settings": dataclasses.asdict(settings),
            "pad_mode": args.pad_mode,
            "checkpoint": args.checkpoint and os.path.abspath(args.checkpoint)}
    save_exported(args.out, exported, meta)
    size = os.path.getsize(args.out)
    print(f"exported {cfg.name}: input ({args.batch}, {args.height}, {args.width}, 3), "
          f"solver {settings.solver} x{settings.max_steps}, platforms {list(exported.platforms)} "
          f"-> {args.out} ({size / 2**20:.1f} MiB)")
    if args.check:
        rng = np.random.default_rng(0)
        shape = (args.batch, args.height, args.width, 3)
        im1 = rng.uniform(0, 255, shape).astype(np.float32)
        im2 = np.roll(im1, (1, 2), axis=(1, 2))
        got = run_exported(load_exported(args.out), im1, im2)
        ref = FlowEstimator(variables, cfg, settings, pad_mode=args.pad_mode)(im1, im2)
        diff = float(np.max(np.abs(got["flow"] - ref.flow)))
        print(f"check: max |flow(exported) - flow(model)| = {diff:.3g} px; "
              f"nstep {got['nstep'].tolist()} vs {ref.nstep.tolist()}")
        if not diff < 1e-3:
            raise CliError("--check", f"the exported function disagrees with the model by {diff} px")
    return 0


def main(argv: list[str]) -> int:
    return run_command("export", build_parser(), argv, _run)
