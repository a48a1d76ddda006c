"""The `deq-flow` command line: one sub-command per module in this package.

Each sub-command lives in `deq_flow_jax/cli/<name>.py` and exposes
`main(argv: list[str]) -> int`, where `argv` are the arguments after the
sub-command's name. Modules are imported lazily so `deq-flow --help` is fast.
Every command parses its flags with argparse and reports errors through
`deq_flow_jax.cli.common.run_command`: one line `deq-flow CMD: <flag or file>: <what is
wrong>` on stderr and exit code 2 (docs/errors_and_safety.md lists the guarantees).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train a DEQ-Flow model (ml_collections config + overrides)",
    "eval": "evaluate a model (default: the shipped one) on a validation protocol",
    "infer": "estimate flow on your own frames, folders or videos (default: the shipped model)",
    "convert": "convert an official PyTorch checkpoint to a model directory",
    "init": "write a randomly initialised model directory",
    "prepare": "build a TFDS dataset (synthetic, or from a manual download)",
    "ablate": "IFT vs Jacobian regularisation vs fixed-point correction",
    "export": "serialise an inference function with jax.export",
    "widen": "grow a training run's GRU / flow head, same flow (resume with more capacity)",
    "demo": "the `make demo` pipeline: data, training, evaluation, plots",
}


def _usage() -> str:
    lines = ["usage: deq-flow COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run `deq-flow COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"deq-flow: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"deq_flow_jax.cli.{name}")
        return int(module.main(rest) or 0)
    except BaseException as err:  # noqa: BLE001 - the commands report their own errors; this is a net
        if isinstance(err, SystemExit):
            raise
        from deq_flow_jax.cli.common import report
        return report(name, err)


def console_main() -> None:
    """The `deq-flow` console script: `main()`, then `common.exit_process` (a user error
    exits without interpreter shutdown, so no background thread adds a traceback)."""
    from deq_flow_jax.cli.common import exit_process
    exit_process(main())


if __name__ == "__main__":
    console_main()
