"""Shared helpers of the IO package: the error type, atomic writes and strict JSON.

Every file this project writes goes through `atomic_path` (directly or through
`atomic_write_bytes` / `atomic_write_text` / `atomic_write_json`): the data goes to
a temporary file in the destination's own folder, which is renamed over the
destination only when it is complete. Readers never see a half-written file, a
failed write leaves nothing behind, and the final file has the permissions a plain
`open(path, "w")` would give it (0666 minus the umask), not mkstemp's 0600.

JSON is strict (RFC 8259): `NaN` and `Infinity` are not JSON, so `strict_json`
writes non-finite floats as `null` and lists where they were under the key
`"non_finite"` (a note for the reader), instead of the bare tokens Python's json
module would emit.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from typing import Any, Iterator

NON_FINITE_KEY = "non_finite"


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
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a folder, expected a file") from None


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path, directory: bool = False) -> None:
    """Gives `path` the mode a plain create would: 0666 (files) or 0777 (folders) minus umask.

    `tempfile.mkstemp` / `mkdtemp` create 0600 / 0700 entries whatever the umask; call this
    on such an entry before renaming it into place.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_path(path, mode: int | None = None) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

    For writers that need a file name (matplotlib, OpenCV's VideoWriter). The temporary
    file exists (empty) when the block starts; on an exception it is removed and `path`
    is left as it was. The folder of `path` must exist.

    Args:
      path: the destination file.
      mode: permission bits of the result; None: 0666 minus the umask.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]  # some writers pick the format from the extension
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        if mode is None:
            apply_umask(tmp)
        else:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes `data` to `path` atomically (temporary file in the same folder + rename).

    The folder is created if needed; the file honours the umask.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path, text: str) -> str:
    """Writes UTF-8 `text` to `path` atomically; returns the path."""
    atomic_write_bytes(path, text.encode("utf-8"))
    return os.fspath(path)


def strict_json(obj: Any) -> tuple[Any, list[str]]:
    """`obj` with every non-finite float replaced by None, and where they were.

    Handles dicts, lists, tuples, numpy scalars and arrays (as lists); other objects are
    returned as they are. Returns (clean object, ["a.b[2]", ...] paths of replaced values).
    """
    found: list[str] = []

    def walk(x, where):
        if isinstance(x, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):  # numpy scalar or array
            return walk(x.tolist(), where)
        if isinstance(x, float) and not math.isfinite(x):
            found.append(where or "<value>")
            return None
        return x

    return walk(obj, ""), found


def dumps_json(obj: Any, **kw) -> str:
    """Strict JSON text of `obj`: non-finite floats become null, noted under "non_finite".

    The note (a list of the replaced values' paths) is added to a top-level dict only
    when something was replaced. `kw` go to `json.dumps` (indent, sort_keys, ...).
    """
    clean, found = strict_json(obj)
    if found and isinstance(clean, dict):
        clean = {**clean, NON_FINITE_KEY: found}
    return json.dumps(clean, allow_nan=False, **kw)


def atomic_write_json(path, obj: Any, indent: int | None = 1, **kw) -> str:
    """Writes `obj` as strict JSON (see `dumps_json`) to `path` atomically; returns the path."""
    return atomic_write_text(path, dumps_json(obj, indent=indent, **kw) + "\n")
