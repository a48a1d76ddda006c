"""Command-line pieces shared by `deq-flow eval`, `infer` and `export`.

Model selection (`--checkpoint`, `--which`), solver settings (`--solver`,
`--max-steps` or `--f-thres` x `--eval-factor`, `--tol`, `--stop-mode`) and one
error-reporting wrapper: a user error prints `deq-flow NAME: error: ...` on
stderr and returns 2, with no traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from deq_flow_jax.evaluate.estimator import SOLVERS, STOP_MODES, SolverSettings


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="DIR",
                        help="model directory (deq-flow init/convert) or training workdir (deq-flow train)")
    parser.add_argument("--which", choices=("best", "latest"), default="best",
                        help="checkpoint of a training workdir (default: best validation EPE)")


def add_solver_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("solver (defaults: the training workdir's config, else official)")
    g.add_argument("--solver", choices=SOLVERS, default=None, help="forward solver (default anderson)")
    g.add_argument("--max-steps", type=int, default=None,
                   help="solver budget; default int(f_thres * eval_factor)")
    g.add_argument("--f-thres", type=int, default=None, help="training budget f_thres (default 40)")
    g.add_argument("--eval-factor", type=float, default=None, help="budget multiplier (default 1.5)")
    g.add_argument("--tol", type=float, default=None, help="residual tolerance (default 1e-3)")
    g.add_argument("--stop-mode", choices=STOP_MODES, default=None, help="abs or rel (default abs)")


def settings_from_args(args, defaults: dict | None = None) -> SolverSettings:
    """SolverSettings from flags, falling back to `defaults` (training config) then official values."""
    d = defaults or {}
    pick = lambda flag, key, official: flag if flag is not None else d.get(key, official)  # noqa: E731
    f_thres = pick(args.f_thres, "f_max_steps", 40)
    factor = pick(args.eval_factor, "eval_factor", 1.5)
    if args.max_steps is not None:
        max_steps = args.max_steps
    else:
        max_steps = int(f_thres * factor)
    if max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1; got {max_steps}")
    return SolverSettings(solver=pick(args.solver, "f_solver", "anderson"), max_steps=int(max_steps),
                          tol=float(pick(args.tol, "f_tol", 1e-3)),
                          stop_mode=pick(args.stop_mode, "f_stop_mode", "abs"))


def load_model_and_settings(args):
    """(variables, cfg, SolverSettings) for the parsed --checkpoint and solver flags."""
    from deq_flow_jax.evaluate.loading import checkpoint_kind, load_any, training_solver_defaults

    kind = checkpoint_kind(args.checkpoint)
    defaults = training_solver_defaults(args.checkpoint) if kind == "workdir" else {}
    settings = settings_from_args(args, defaults)
    variables, cfg = load_any(args.checkpoint, args.which)
    return variables, cfg, settings


def run_cli(name: str, parser: argparse.ArgumentParser, argv, body: Callable) -> int:
    """Parses argv and runs body(args); user errors become one line on stderr and exit code 2."""
    from deq_flow_jax.evaluate.inputs import InputError

    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return int(e.code or 0)
    try:
        return int(body(args) or 0)
    except (InputError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"deq-flow {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deq-flow {name}: interrupted", file=sys.stderr)
        return 130
