"""`deq-flow export --checkpoint DIR --out FILE --height H --width W`: serialise inference.

Writes FILE (a `jax.export` serialisation: weights, fixed input shape
(B, H, W, 3) and fixed solver budget baked in) and FILE.json describing its
inputs and outputs. Reload anywhere JAX runs, without this package:

    exp = jax.export.deserialize(bytearray(open(FILE, "rb").read()))
    flow, flow_lowres, hidden, nstep, abs_res, rel_res = exp.call(image1, image2)

--check reloads the file, runs it on random frames and compares with the model.
"""
from __future__ import annotations

import argparse
import dataclasses
import os

from deq_flow_jax.evaluate import cli_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deq-flow export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_model_args(p)
    p.add_argument("--out", required=True, metavar="FILE", help="serialised output file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.add_argument("--height", type=int, required=True, help="input height in pixels")
    p.add_argument("--width", type=int, required=True, help="input width in pixels")
    p.add_argument("--batch", type=int, default=1, help="pairs per call (default 1)")
    p.add_argument("--pad-mode", choices=("sintel", "kitti"), default="sintel")
    p.add_argument("--platforms", default=None,
                   help="comma-separated lowering platforms, e.g. cpu,cuda (default: this backend)")
    p.add_argument("--check", action="store_true", help="reload and compare with the model")
    cli_args.add_solver_args(p)
    return p


def _run(args) -> int:
    import numpy as np

    from deq_flow_jax.evaluate.estimator import FlowEstimator
    from deq_flow_jax.evaluate.export import export_inference, load_exported, run_exported, save_exported

    if os.path.lexists(args.out) and not args.overwrite:
        raise FileExistsError(f"{args.out}: exists; pass --overwrite to replace it")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{parent}: parent folder of --out does not exist")
    if min(args.height, args.width) < 16 or args.batch < 1:
        raise ValueError(f"--height/--width must be >= 16 and --batch >= 1; got "
                         f"{args.height}x{args.width}, batch {args.batch}")
    platforms = [s.strip() for s in args.platforms.split(",")] if args.platforms else None
    variables, cfg, settings = cli_args.load_model_and_settings(args)
    exported = export_inference(variables, cfg, height=args.height, width=args.width,
                                batch=args.batch, settings=settings, pad_mode=args.pad_mode,
                                platforms=platforms)
    meta = {"model": cfg.to_dict(), "settings": dataclasses.asdict(settings),
            "pad_mode": args.pad_mode, "checkpoint": os.path.abspath(args.checkpoint)}
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
            raise ValueError(f"exported function disagrees with the model by {diff} px")
    return 0


def main(argv: list[str]) -> int:
    return cli_args.run_cli("export", build_parser(), argv, _run)
