"""Shared parsing of absl / ml_collections flags for `deq-flow train`, `demo` and `ablate`."""
from __future__ import annotations

import sys

from absl import flags


def parse_flags(prog: str, fv: flags.FlagValues, argv: list[str], doc: str) -> int | None:
    """Parses `argv` into `fv` (config files and `--config.a.b=value` overrides).

    Args:
      prog: the command's name for messages, e.g. "deq-flow train".
      fv: the command's own FlagValues.
      argv: the arguments after the sub-command's name.
      doc: the command's help text (printed with the flags for -h/--help).

    Returns:
      None to go on, or the exit code to stop with: 0 after printing help, 2 after printing
      what was wrong (a bad flag, an unknown `--config.key`, a value of the wrong type).
    """
    if any(a in ("-h", "--help", "--helpfull") for a in argv):
        print(doc)
        print(fv.main_module_help())
        return 0
    try:
        fv([prog, *argv])
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        print(f"{prog}: {e} (see {prog} --help)", file=sys.stderr)
        return 2
    fv.mark_as_parsed()
    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    return None
