"""Flags shared by `deq-flow eval`, `infer` and `export`: the model and the solver.

Model selection (`--checkpoint`, optional: the shipped pretrained model when omitted;
`--which`) and solver settings (`--solver`, `--max-steps` or `--f-thres` x
`--eval-factor`, `--tol`, `--stop-mode`), where the solver starts (`--start`) and the flow's
post-processing (`--refine`), each number checked when parsed.
"""
from __future__ import annotations

import argparse

from deq_flow_jax.cli.common import (
    PRETRAINED_HELP,
    CliError,
    at_least,
    load_checkpoint_arg,
    positive,
)
from deq_flow_jax.evaluate.estimator import SolverSettings
from deq_flow_jax.evaluate.refine import REFINE_METHODS
from deq_flow_jax.evaluate.starts import START_MODES
from deq_flow_jax.solvers import SOLVER_NAMES, STOP_MODES


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, metavar="DIR", help=PRETRAINED_HELP)
    parser.add_argument("--which", choices=("best", "latest"), default="best",
                        help="checkpoint of a training workdir (default: best validation EPE)")


def add_solver_args(parser: argparse.ArgumentParser, refine: bool = True) -> None:
    """The solver flags, and `--refine` unless `refine` is False (export: the exported
    function is the model alone)."""
    g = parser.add_argument_group("solver (defaults: the checkpoint's stored DEQ config, else official)")
    g.add_argument("--solver", choices=SOLVER_NAMES, default=None, help="forward solver (default anderson)")
    g.add_argument("--max-steps", type=at_least(1), default=None,
                   help="solver budget; default int(f_thres * eval_factor)")
    g.add_argument("--f-thres", type=at_least(1), default=None, help="training budget f_thres (default 40)")
    g.add_argument("--eval-factor", type=positive, default=None, help="budget multiplier (default 1.5)")
    g.add_argument("--tol", type=positive, default=None, help="residual tolerance (default 1e-3)")
    g.add_argument("--stop-mode", choices=STOP_MODES, default=None, help="abs or rel (default abs)")
    if not refine:
        return
    g.add_argument("--refine", choices=REFINE_METHODS, default=None,
                   help="post-processing of the model's flow: 'variational' refines it coarse to "
                        "fine on the frames (OpenCV's variational refinement), 'fusion' fuses "
                        "three such refinements pixel by pixel, 'fusion+dis' then also takes "
                        "OpenCV's DIS flow where it matches better and is within 4 px "
                        "(docs/evaluation.md); default: the checkpoint's stored setting (the "
                        "shipped deq-flow-s-cpu: fusion+dis), else none")
    g.add_argument("--start", choices=START_MODES, default=None,
                   help="where the solver starts: 'zero' (zero flow, official), 'coarse' (the "
                        "model's own flow on the frames at 1/4 then 1/2 size: large motions), "
                        "'both' (both, keeping per pair the flow that matches the frames "
                        "better; about twice the time), 'all' (as both, plus starts from the "
                        "frames' dominant translation and homography where they are large: "
                        "camera pans, zooms, turns); "
                        "default: the checkpoint's stored setting (the shipped "
                        "deq-flow-s-cpu: all), else zero")


def check_memory(culprit: str, size: tuple[int, int], work: tuple[int, int], batch: int = 1) -> None:
    """Refuses (CliError naming `culprit`, the input) a run on frames of `size` (H, W) estimated
    at `work` (H, W) whose estimated peak memory (`model.inference.inference_memory_bytes`)
    exceeds 90 % of what the machine has available, before the model is loaded; the message
    says which --max-size (or --batch-size) would fit."""
    from deq_flow_jax.cli.common import available_memory_bytes
    from deq_flow_jax.model.inference import inference_memory_bytes

    need, have = inference_memory_bytes(*work, batch), available_memory_bytes()
    if have is None or need <= 0.9 * have:
        return
    side = max(work)
    scaled = lambda s: (max(8, int(work[0] * s)), max(8, int(work[1] * s)))  # noqa: E731
    fits = [n for n in range(side - side % 64, 63, -64)
            if inference_memory_bytes(*scaled(n / side), batch) <= 0.9 * have]
    if batch > 1 and inference_memory_bytes(*work, 1) <= 0.9 * have:
        how = "use a smaller --batch-size"
    elif fits:
        how = f"pass --max-size {fits[0]} or less"
    else:
        how = "free some memory first (the model alone needs about 1 GB)"
    raise CliError(culprit, f"frames of {size[0]}x{size[1]} estimated at {work[0]}x{work[1]} need "
                            f"about {need / 1e9:.1f} GB, more than the {have / 1e9:.1f} GB "
                            f"available; {how}")


def settings_from_args(args, defaults: dict | None = None) -> SolverSettings:
    """SolverSettings from flags, falling back to `defaults` (the checkpoint's stored DEQ
    config and inference entry) then `checkpoints.FALLBACK_DEQ` (refine: "none")."""
    from deq_flow_jax.checkpoints import FALLBACK_DEQ

    d = defaults or {}
    pick = lambda flag, key: flag if flag is not None else d.get(key, getattr(FALLBACK_DEQ, key))  # noqa: E731
    if args.max_steps is not None:
        max_steps = args.max_steps
    else:
        f_thres = pick(args.f_thres, "f_max_steps")
        factor = pick(args.eval_factor, "eval_factor")
        max_steps = int(f_thres * factor)
        if max_steps < 1:
            culprit = " x ".join(f for f, v in (("--f-thres", args.f_thres), ("--eval-factor", args.eval_factor))
                                 if v is not None) or "--checkpoint (its training config)"
            raise CliError(culprit, f"the solver budget int({f_thres} x {factor}) = {max_steps} is "
                                    "below 1; raise them or pass --max-steps")
    refine = getattr(args, "refine", None) or d.get("refine", "none")
    start = getattr(args, "start", None) or d.get("start", "zero")
    return SolverSettings(solver=pick(args.solver, "f_solver"), max_steps=int(max_steps),
                          tol=float(pick(args.tol, "f_tol")),
                          stop_mode=pick(args.stop_mode, "f_stop_mode"), refine=refine, start=start)


def load_model_and_settings(args):
    """(variables, cfg, SolverSettings) for the parsed --checkpoint and solver flags."""
    variables, cfg, defaults = load_checkpoint_arg(args.checkpoint, args.which)
    return variables, cfg, settings_from_args(args, defaults)
