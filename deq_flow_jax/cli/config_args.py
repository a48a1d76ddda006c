"""Shared parsing of absl / ml_collections flags for `deq-flow train`, `demo` and `ablate`."""
from __future__ import annotations

import sys
from typing import Callable

from absl import flags


_BAD_FLAG = (flags.Error, AttributeError, KeyError, TypeError, ValueError)


def parse_flags(prog: str, make_flags: Callable[[], flags.FlagValues], argv: list[str], doc: str,
                required: tuple[str, ...] = ("config", "workdir")
                ) -> tuple[flags.FlagValues | None, int | None]:
    """Defines the command's flags and parses `argv` (config files, `--config.a.b=value`).

    Args:
      prog: the command's name for messages, e.g. "deq-flow train".
      make_flags: returns the command's own FlagValues (a config flag with a default file
        already reads `--config.*` overrides when it is defined, so errors can arise here).
      argv: the arguments after the sub-command's name.
      doc: the command's help text (printed with the flags for -h/--help).
      required: flags that must be set (after defaults); a missing one is a usage error.

    Returns:
      (flag values, None) to go on, or (None or flag values, exit code) to stop with: 0 after
      printing help, 2 after printing what was wrong (a bad flag, an unknown `--config.key`,
      a value of the wrong type).
    """
    try:
        fv = make_flags()
    except _BAD_FLAG as e:
        print(f"{prog}: {e} (see {prog} --help)", file=sys.stderr)
        return None, 2
    if any(a in ("-h", "--help", "--helpfull") for a in argv):
        print(doc)
        print(fv.main_module_help())
        return fv, 0
    try:
        fv([prog, *argv])
    except _BAD_FLAG as e:
        print(f"{prog}: {e} (see {prog} --help)", file=sys.stderr)
        return fv, 2
    missing = [name for name in required if fv[name].value is None or fv[name].value == ""]
    if missing:
        names = " and ".join(f"--{name}" for name in required)
        print(f"{prog}: {names} are required (see {prog} --help)", file=sys.stderr)
        return fv, 2
    fv.mark_as_parsed()
    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags
    return fv, None
