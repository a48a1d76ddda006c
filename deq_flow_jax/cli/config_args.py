"""`--config FILE[:ARG]` and `--config.key=value` for `deq-flow train`, `demo` and `ablate`.

The commands define their own flags with `common.ArgumentParser` like every other
command; `add_config_arg` adds `--config`, and `parse_config_command` parses the rest
with argparse and hands `--config` plus every `--config.a.b=value` (or
`--config.a.b value`) override to ml_collections' config-file loader, which reads the
file, calls its `get_config(ARG)` and applies the overrides with the field's own type.
Any problem becomes a `CliError` naming `--config` or the override.
"""
from __future__ import annotations

import os
import re
from typing import Sequence

from deq_flow_jax.cli.common import ArgumentParser, CliError

_OVERRIDE = re.compile(r"^--?(no)?config\.")


def add_config_arg(parser: ArgumentParser, default: str | None, help_text: str) -> None:
    parser.add_argument("--config", default=default, metavar="FILE[:ARG]",
                        help=f"{help_text}; override any field with --config.a.b=value")


def _split_overrides(extra: Sequence[str], prog: str) -> list[str]:
    """The `--config.*` arguments (with a separate value when given as `--config.x VALUE`)."""
    out, i = [], 0
    while i < len(extra):
        arg = extra[i]
        if not _OVERRIDE.match(arg):
            raise CliError(arg, f"unknown flag or extra argument (see {prog} --help)")
        out.append(arg)
        if "=" not in arg and i + 1 < len(extra) and not extra[i + 1].startswith("-"):
            out.append(extra[i + 1])
            i += 1
        i += 1
    return out


def _config_error(path: str, overrides: Sequence[str], err: Exception) -> CliError:
    """ml_collections / absl errors -> a CliError naming the override or the config file."""
    text = str(err)
    if isinstance(err, (AttributeError, KeyError)):     # an override of a key the config lacks
        key = text.strip("\"'")
        for arg in overrides:
            name = arg.split("=", 1)[0].lstrip("-")
            if name.endswith("." + key):
                return CliError(f"--{name.removeprefix('no')}", "no such key in the config")
    unknown = re.search(r"Unknown command line flag '(config\.[^']*)'", text)
    if unknown:
        return CliError(f"--{unknown.group(1)}", "no such key in the config")
    flag = re.search(r"(--config\.[\w.]+)", text)
    if flag and "Missing value" in text:
        return CliError(flag.group(1), "needs a value (--config.key=value)")
    if flag:
        what = text.split(f"{flag.group(1)}", 1)[1].lstrip("=").split(":", 1)[-1]
        return CliError(flag.group(1), " ".join(what.split()) or "bad value")
    file_part = path.split(":")[0]
    if not os.path.isfile(file_part):
        return CliError(f"--config {file_part}", "no such config file")
    if isinstance(err, SyntaxError):
        return CliError(f"--config {file_part}", f"not a Python config file ({err.msg}, line {err.lineno})")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return CliError(f"--config {path}", lines[-1] if lines else type(err).__name__)


def load_config(path: str, overrides: Sequence[str], lock: bool = True):
    """Reads an ml_collections config file (`FILE[:ARG]`) and applies `--config.*` overrides."""
    from absl import flags
    from ml_collections import config_flags

    if not os.path.isfile(path.split(":")[0]):
        raise CliError(f"--config {path.split(':')[0]}", "no such config file")
    fv = flags.FlagValues()
    argv = ["deq-flow", f"--config={path}", *overrides]
    try:
        config_flags.DEFINE_config_file("config", None, "config file", flag_values=fv,
                                        lock_config=lock, sys_argv=argv)
        fv(argv)
        return fv.config
    except Exception as err:  # noqa: BLE001 - absl/ml_collections raise many types; all mean bad input
        raise _config_error(path, overrides, err) from None


def parse_config_command(parser: ArgumentParser, argv: Sequence[str], required: Sequence[str] = (),
                         lock: bool = True):
    """Parses a config-file command's flags; `args.config` is the loaded ConfigDict.

    Args:
      parser: the command's parser (with `add_config_arg`).
      argv: the arguments after the sub-command's name.
      required: flags that must be set, e.g. ("config", "workdir").
      lock: lock the config (no new fields through overrides).

    Raises:
      CliError: a bad flag, a missing required flag, a bad config file or override.
    """
    args, extra = parser.parse_known_args(list(argv))
    overrides = _split_overrides(extra, parser.prog)
    missing = [f"--{name}" for name in required if getattr(args, name) in (None, "")]
    if missing:
        names = " and ".join(f"--{name}" for name in required)
        raise CliError(None, f"{names} are required (see {parser.prog} --help)"
                       if len(required) > 1 else f"{names}: required (see {parser.prog} --help)")
    if args.config is None:
        if overrides:
            raise CliError(overrides[0].split("=")[0], "needs --config FILE first")
    else:
        args.config = load_config(args.config, overrides, lock=lock)
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    return args
