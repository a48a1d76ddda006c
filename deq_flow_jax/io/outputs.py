"""Output folders and files that never touch what the command did not create.

Rules (docs/errors_and_safety.md):

* An output folder is built under a hidden temporary name beside its destination
  (`StagedDir`) and renamed into place at the end: an error, Ctrl-C or SIGTERM leaves
  nothing behind. The folder carries a marker file, `MARKER`, saying deq-flow wrote it.
* `overwrite` replaces an existing folder only if it carries that marker, and an
  existing file only if `is_ours(path)` says this tool wrote it; anything else is refused.
* A working folder (train / demo / ablate `--workdir`) is written in place and resumed,
  never replaced: it must be new, empty, or made by deq-flow (`WORKDIR_MARKER`, or a
  workdir from before the marker); see `claim_workdir`.
* An output that overlaps an input (the same path, a folder holding the input, or a
  path inside an input folder) is refused before any work (`check_no_overlap`).
* A destination that cannot be written is reported with the user's path, before any work.
* Everything created honours the umask.

Errors are `OutputError` (a ValueError) whose message starts with the user's path.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Callable, Iterable

from deq_flow_jax.io.common import apply_umask, atomic_write_text

MARKER = ".deq-flow-output"
WORKDIR_MARKER = ".deq-flow-workdir"   # working folders (train, demo, ablate): never replaced


class OutputError(ValueError):
    """An output path that cannot be used; the message names it and says why."""


def _real(path) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def overlap(a, b) -> str | None:
    """How paths `a` and `b` overlap ("is", "contains", "is inside") or None."""
    ra, rb = _real(a), _real(b)
    if ra == rb:
        return "is"
    if rb.startswith(ra.rstrip(os.sep) + os.sep):
        return "contains"
    if ra.startswith(rb.rstrip(os.sep) + os.sep):
        return "is inside"
    return None


def check_no_overlap(out, flag: str, inputs: Iterable[tuple[str, object]], what: str = "input") -> None:
    """Raises OutputError if output `out` (given as `flag`) overlaps any (label, path) of
    `inputs`; `what` names those paths in the message ("input", or "output" when they are the
    command's other outputs)."""
    for label, path in inputs:
        if path is None:
            continue
        how = overlap(out, path)
        if how:
            advice = ("choose an output outside every input" if what == "input"
                      else "choose outputs that do not overlap")
            raise OutputError(f"{out}: {flag} {how} the {what} {path} ({label}); {advice}")


def has_marker(folder) -> bool:
    """True if `folder` is a real folder that deq-flow wrote (it holds MARKER)."""
    folder = os.fspath(folder)
    return (os.path.isdir(folder) and not os.path.islink(folder)
            and os.path.isfile(os.path.join(folder, MARKER)))


def _check_parent(path: str, flag: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise OutputError(f"{path}: {flag}: its parent folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: {flag}: cannot write into {parent} (permission denied)")


def check_output_dir(out, overwrite: bool, flag: str = "--out") -> None:
    """Raises OutputError unless `out` can become this command's output folder.

    It may not exist; with `overwrite` it may be a folder that deq-flow wrote (marker).
    """
    out = os.fspath(out)
    if os.path.lexists(out):
        if os.path.islink(out):
            raise OutputError(f"{out}: {flag} is a symbolic link; not replaced")
        if not os.path.isdir(out):
            raise OutputError(f"{out}: {flag} exists and is not a folder; not replaced")
        if not overwrite:
            raise OutputError(f"{out}: {flag}: output path exists; pass --overwrite to replace it "
                              "(only a folder written by deq-flow is replaced)")
        if not has_marker(out):
            raise OutputError(f"{out}: {flag} exists and was not written by deq-flow (no {MARKER} "
                              "inside); not replaced: remove it yourself or choose another path")
    _check_parent(out, flag)


def check_output_file(out, overwrite: bool, flag: str = "--out",
                      is_ours: Callable[[str], bool] = lambda path: False) -> None:
    """Raises OutputError unless `out` can become this command's output file.

    It may not exist; with `overwrite` it may be a regular file for which `is_ours` is True.
    """
    out = os.fspath(out)
    if os.path.lexists(out):
        if os.path.isdir(out):
            raise OutputError(f"{out}: {flag} is a folder; give a file path")
        if os.path.islink(out) or not os.path.isfile(out):
            raise OutputError(f"{out}: {flag} exists and is not a regular file; not replaced")
        if not overwrite:
            raise OutputError(f"{out}: {flag}: file exists; pass --overwrite to replace it")
        if not is_ours(out):
            raise OutputError(f"{out}: {flag} exists and was not written by deq-flow; not replaced: "
                              "remove it yourself or choose another path")
    _check_parent(out, flag)


def json_object(path) -> dict | None:
    """The JSON object in file `path`, or None (missing, unreadable, not JSON, not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def json_field(path, key: str = "tool"):
    """Entry `key` of a JSON object file (None if the file is not such JSON): how a command
    recognises a results file it wrote before replacing it."""
    data = json_object(path)
    return None if data is None else data.get(key)


def is_train_workdir(path) -> bool:
    """True for a training workdir written before WORKDIR_MARKER existed: a `config.json`
    holding the training config's sections and a `model_config.json`."""
    cfg = json_object(os.path.join(path, "config.json"))
    return (cfg is not None and {"model", "deq", "data"} <= set(cfg)
            and json_object(os.path.join(path, "model_config.json")) is not None)


def check_workdir(path, flag: str = "--workdir",
                  legacy: Callable[[str], bool] = is_train_workdir) -> str:
    """The read-only half of `claim_workdir`: raises OutputError where `path` could not be
    claimed (not a folder, or a folder of a user's own files); creates and writes nothing.
    Lets a command refuse its other inputs before the folder exists. Returns the absolute path.
    """
    shown = os.fspath(path)
    path = os.path.abspath(os.path.expanduser(shown))
    if os.path.lexists(path) and not os.path.isdir(path):
        raise OutputError(f"{shown}: {flag} exists and is not a folder")
    marker = os.path.join(path, WORKDIR_MARKER)
    if os.path.isdir(path) and not os.path.isfile(marker) and os.listdir(path) and not legacy(path):
        raise OutputError(f"{shown}: {flag} holds files deq-flow did not write (no {WORKDIR_MARKER} "
                          "inside); nothing written: choose a new or empty folder")
    return path


def claim_workdir(path, command: str, flag: str = "--workdir",
                  legacy: Callable[[str], bool] = is_train_workdir) -> str:
    """Makes `path` the working folder of `command` (train, demo, ablate) or raises OutputError.

    A working folder is written into in place and resumed (config.json, train.jsonl,
    checkpoints/, ...), so unlike an output folder it is never replaced; instead it must be
    new, empty, hold WORKDIR_MARKER (deq-flow made it), or be a deq-flow working folder from
    before the marker (`legacy(path)` True). A folder holding anything else is refused, so a
    run never writes over, truncates or resumes from a user's own files. Writes the marker
    (JSON naming the command) if missing; returns the absolute path.
    """
    shown = os.fspath(path)
    path = check_workdir(path, flag, legacy)
    marker = os.path.join(path, WORKDIR_MARKER)
    try:
        os.makedirs(path, exist_ok=True)
        if not os.path.isfile(marker):
            atomic_write_text(marker, json.dumps({"tool": "deq-flow-jax", "command": command}) + "\n")
    except OSError as err:
        raise OutputError(f"{shown}: {flag}: cannot write here ({err.strerror})") from None
    return path


class StagedDir:
    """A hidden temporary folder beside `target`, moved into place by `commit()`.

    The folder holds `marker` (JSON naming the command) from the start. As a context
    manager: commits on success, deletes the staging folder on any error (including
    KeyboardInterrupt and the SIGTERM the CLI turns into one).

    Args:
      target: the output folder (checked with `check_output_dir`).
      overwrite: replace an existing output folder that carries `MARKER`.
      command: written into the marker, e.g. "infer".
      flag: the flag that named `target`, for messages.
      marker: `MARKER` (an output folder) or `WORKDIR_MARKER` (a new working folder, built
        complete before `train` may resume it; working folders are never replaced, so
        `overwrite` must then be False).
    """

    def __init__(self, target, overwrite: bool = False, command: str = "deq-flow",
                 flag: str = "--out", marker: str = MARKER):
        if marker not in (MARKER, WORKDIR_MARKER) or (overwrite and marker != MARKER):
            raise ValueError(f"StagedDir: marker {marker!r} with overwrite={overwrite}")
        target = os.fspath(target)
        check_output_dir(target, overwrite, flag)
        self.user_path, self.flag = target, flag
        self.target, self.overwrite = os.path.abspath(target), overwrite
        base = os.path.basename(self.target.rstrip(os.sep)) or "out"
        try:
            self.path = tempfile.mkdtemp(prefix=f".tmp-{base}-", dir=os.path.dirname(self.target))
        except OSError as err:
            raise OutputError(f"{target}: {flag}: cannot create the output here ({err.strerror})") from None
        apply_umask(self.path, directory=True)
        atomic_write_text(os.path.join(self.path, marker),
                          json.dumps({"tool": "deq-flow-jax", "command": command}) + "\n")

    def commit(self) -> str:
        """Moves the staged folder onto the target (replacing a marked old output)."""
        if os.path.lexists(self.target):
            if not (self.overwrite and has_marker(self.target)):
                self.discard()
                raise OutputError(f"{self.user_path}: {self.flag}: output path appeared while "
                                  "writing; not replaced")
            old = os.path.join(os.path.dirname(self.target), ".old-" + os.path.basename(self.path))
            os.replace(self.target, old)
            os.replace(self.path, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.target)
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "StagedDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
