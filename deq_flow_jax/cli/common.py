"""What every `deq-flow` command shares: one flag library, one error path, one checkpoint loader.

Flags: every command defines its flags with `ArgumentParser` (argparse) and runs through
`run_command`. The config-file commands (train, demo, ablate) add `--config FILE[:ARG]` and
`--config.key=value` overrides on top (`deq_flow_jax.cli.config_args`).

Errors: whatever goes wrong, the user sees one line on stderr,

    deq-flow CMD: <flag or file>: <what is wrong>

and the exit code is 2 (a bad flag, file, folder or input; nothing was written), 130 after
Ctrl-C and 143 after SIGTERM (both clean up like an error: no partial output is left).
An unexpected internal error prints one line with a hint to report it and exits 1; set
DEQ_FLOW_DEBUG=1 to see the traceback as well.

Numbers: every numeric flag is checked when parsed (`at_least`, `positive`), so the
message names the flag before any work starts.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import traceback
from typing import Callable, Iterator, Sequence

DEBUG_ENV = "DEQ_FLOW_DEBUG"
ISSUES_HINT = "this is a bug in deq-flow-jax: please report it with the command line"
EXIT_USAGE, EXIT_INTERNAL, EXIT_SIGINT, EXIT_SIGTERM = 2, 1, 130, 143


class CliError(Exception):
    """A user error: `culprit` is the flag or file to blame, `message` what is wrong with it."""

    def __init__(self, culprit: str | None, message: str):
        super().__init__(f"{culprit}: {message}" if culprit else message)
        self.culprit, self.message = culprit, message


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so cleanup runs as after Ctrl-C."""


def _argparse_message(message: str) -> str:
    """argparse's wording -> `<flag>: <what is wrong>`."""
    if message.startswith("argument "):
        flag, _, what = message[len("argument "):].partition(": ")
        flag = flag.split("/")[-1]  # "-o/--out" -> "--out"
        return f"{flag}: {what}"
    if message.startswith("the following arguments are required: "):
        names = message.split(": ", 1)[1]
        return f"{names}: required"
    if message.startswith("unrecognized arguments: "):
        return f"{message.split(': ', 1)[1]}: unknown flag or extra argument"
    return message


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (raised as CliError, not printed) and raw help text."""

    def __init__(self, prog: str, description: str | None = None, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kw.setdefault("allow_abbrev", False)
        super().__init__(prog=prog, description=description, **kw)

    def error(self, message: str):
        raise CliError(None, f"{_argparse_message(message)} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        """As argparse, but an unknown flag is reported first (before missing ones)."""
        args = list(sys.argv[1:] if args is None else args)
        for a in args:
            if a == "--":
                break
            name = a.split("=", 1)[0]
            if a.startswith("-") and len(a) > 1 and not _is_number(a) and name not in self._option_string_actions:
                self.error(f"unrecognized arguments: {a}")
        return super().parse_args(args, namespace)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ numeric flag types

def available_memory_bytes() -> int | None:
    """Memory the system can give a new allocation now (Linux MemAvailable), else the
    physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def at_least(lo: int) -> Callable[[str], int]:
    """argparse type: an integer >= lo."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}; got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}; got {value}")
        return value
    parse.__name__ = f"integer >= {lo}"
    return parse


def positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def non_negative(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value


# ------------------------------------------------------------------ the one error path

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(err: BaseException) -> str:
    """The user-facing text of an error: OSErrors name their file, not errno."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(err)
    if isinstance(err, KeyError):  # str(KeyError("x")) is "'x'"
        text = text.strip("'")
    return text or type(err).__name__


def user_errors() -> tuple:
    """Exception types that mean "bad input": reported in one line with exit code 2."""
    from deq_flow_jax.io.common import FlowFormatError

    return (CliError, FlowFormatError, ValueError, OSError)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises `Terminated` like Ctrl-C raises
    KeyboardInterrupt, so `finally`/`except BaseException` cleanups run."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def report(name: str, err: BaseException) -> int:
    """Prints the one line for `err` and returns the exit code."""
    prog = f"deq-flow {name}"
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if isinstance(err, Terminated):
        print(f"{prog}: terminated (SIGTERM); partial outputs removed", file=sys.stderr)
        return EXIT_SIGTERM
    if isinstance(err, KeyboardInterrupt):
        print(f"{prog}: interrupted; partial outputs removed", file=sys.stderr)
        return EXIT_SIGINT
    if debug:
        traceback.print_exception(err)
    if isinstance(err, user_errors()):
        print(f"{prog}: {_one_line(_message(err))}", file=sys.stderr)
        return EXIT_USAGE
    hint = "" if debug else f"; set {DEBUG_ENV}=1 for the traceback"
    print(f"{prog}: internal error: {type(err).__name__}: {_one_line(_message(err))[:500]} "
          f"({ISSUES_HINT}{hint})", file=sys.stderr)
    return EXIT_INTERNAL


def exit_process(code: int) -> None:
    """Ends the process with `code`. After a user error (2) it skips interpreter shutdown
    (`os._exit`, streams flushed first): a failed orbax / tensorstore read can leave
    asyncio work in a background thread that prints "Event loop is closed" tracebacks
    during shutdown, after the one-line message (those arriving earlier are dropped by
    `checkpoints.drop_late_tensorstore_callbacks`). Other codes exit normally."""
    if code == EXIT_USAGE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def run_command(name: str, parser: argparse.ArgumentParser | Callable[[list], object],
                argv: Sequence[str], body: Callable[[object], int | None]) -> int:
    """Parses `argv` and runs `body(args)` with the one error path of every command.

    Args:
      name: the sub-command ("infer"), for messages.
      parser: an `ArgumentParser`, or a callable argv -> parsed args (may raise CliError).
      argv: the arguments after the sub-command's name.
      body: the command; returns an exit code (None = 0).

    Returns:
      0, or the exit code of `report` (2 user error, 1 internal, 130/143 interrupted).
    """
    with sigterm_as_interrupt():
        try:
            try:
                args = parser.parse_args(list(argv)) if hasattr(parser, "parse_args") else parser(list(argv))
            except SystemExit as e:  # --help printed (0)
                return int(e.code or 0)
            return int(body(args) or 0)
        except BaseException as err:  # noqa: BLE001 - every error ends here, as one line
            if isinstance(err, SystemExit):
                raise
            return report(name, err)


# ------------------------------------------------------------------ checkpoints

PRETRAINED_HELP = ("model folder (deq-flow init / convert) or training workdir (deq-flow train); "
                   "when omitted, the shipped pretrained model (deq_flow_jax/pretrained) is used")


def load_checkpoint_arg(path: str | None, which: str = "best"):
    """The one place every command loads `--checkpoint` through (`checkpoints.load`).

    Args:
      path: a model folder, a training workdir, or None for the shipped pretrained model.
      which: "best" or "latest" checkpoint of a training workdir.

    Returns:
      (variables, ModelConfig, solver defaults {"f_solver", "f_max_steps", "f_tol",
      "f_stop_mode", "eval_factor"}: the checkpoint's stored DEQ config, or
      `checkpoints.FALLBACK_DEQ` when it stores none; plus "refine" and "start" when the model
      directory stores them, `checkpoints.inference`).

    Raises:
      CliError naming --checkpoint: missing, not a model, corrupt, or weights that do not fit
      the stored model config (another variant's weights).
    """
    from deq_flow_jax import checkpoints

    flag = "--checkpoint" if path is None else f"--checkpoint {path}"
    try:
        variables, cfg, deq = checkpoints.load(path, which)
        inference = checkpoints.inference(path)
    except FileNotFoundError as err:
        if path is None:
            raise CliError("--checkpoint", f"not given, and {_one_line(_message(err))}") from None
        raise CliError(flag, _one_line(_message(err))) from None
    except (ValueError, OSError, KeyError) as err:
        raise CliError(flag, f"cannot load: {_one_line(_message(err))}") from None
    deq = checkpoints.evaluation_deq(deq)
    defaults = {k: getattr(deq, k) for k in ("f_solver", "f_max_steps", "f_tol", "f_stop_mode",
                                             "eval_factor")}
    defaults.update(inference)
    return variables, cfg, defaults

