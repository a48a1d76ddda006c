"""Shared helpers of the IO package: the error type and atomic writes."""
from __future__ import annotations

import os
import tempfile


class FlowFormatError(ValueError):
    """A file is not in the expected format (bad magic, header, size, truncated)."""


def read_bytes(path) -> bytes:
    """Reads a whole file, turning a missing file into a clear error."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same directory + rename.

    Readers never see a half-written file, and a failed write leaves no output.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
