"""Your own image pairs with ground-truth flow, listed in a text file: the evaluation
source of `deq-flow eval --pairs LIST`.

One pair per line, three paths separated by white space (quote a path that holds spaces,
as in a shell), relative to the list file's folder unless absolute:

    # frame 1                      frame 2                         ground truth
    other-data/Urban2/frame10.png  other-data/Urban2/frame11.png   other-gt-flow/Urban2/flow10.flo
    training/image_2/000000_10.png training/image_2/000000_11.png  training/flow_occ/000000_10.png

Blank lines and lines starting with `#` are skipped. Frames: any image OpenCV reads
(grey, RGB, RGBA; 8 or 16 bit), as (H, W, 3) uint8 RGB. Ground truth by extension:
`.flo` (Middlebury), `.pfm` (Sceneflow), `.png` (KITTI's 16-bit flow PNG with its valid
bit). Pixels whose flow is not known (a component of 1000 px or more, such as
Middlebury's 1e9, NaN, or KITTI's valid bit 0) are left out of the metrics
(`records.known_flow`). Frames and flow of one pair must have one size; pairs may differ.

`PairListSource(path)` reads and checks the list when made (every file exists; both frames
of a pair have one size, read from the image headers: `sizes`); each item is decoded when
read: {"image1", "image2": (H, W, 3) uint8, "flow": (H, W, 2) float32,
"valid": (H, W) float32, "meta": {"dataset": "pairs", "scene": "line N", "frame": None, "id": frame 1's
path as listed, "files": the three paths}}. Errors are `PairListError` (a `ValueError`)
naming the list file and line, or the file that cannot be read.
"""
from __future__ import annotations

import os
import shlex

import numpy as np

FLOW_EXTENSIONS = (".flo", ".pfm", ".png")


class PairListError(ValueError):
    """A pair list that cannot be used: the message names the list (and line) or the file."""


def _frame_size(path: str) -> tuple[int, int]:
    """(H, W) of a frame: from its header, else (a format Pillow does not know) decoded."""
    from deq_flow_jax import io

    try:
        return io.read_image_size(path)
    except ValueError:
        return io.read_image(path).shape[:2]


def _read_flow_file(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(flow (H, W, 2) float32, valid (H, W) or None) of a ground-truth file, by extension."""
    from deq_flow_jax import io

    if path.lower().endswith(".png"):
        return io.read_kitti_flow(path)
    return io.read_flow(path), None


class PairListSource:
    """Random access to the pairs of a list file (see the module docstring).

    Args:
        path: the list file.
    """

    name = "pairs"

    def __init__(self, path: str):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise PairListError(f"{self.path}: no such pair list file")
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise PairListError(f"{self.path}: cannot read the pair list ({e})") from None
        root = os.path.dirname(os.path.abspath(self.path))
        self.pairs: list[tuple[int, tuple[str, str, str], tuple[str, str, str]]] = []
        self.sizes: list[tuple[int, int]] = []      # (H, W) of each pair's frames
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{self.path}, line {number}"
            try:
                fields = shlex.split(line)
            except ValueError as e:
                raise PairListError(f"{where}: {e}") from None
            if len(fields) != 3:
                raise PairListError(f"{where}: expected three paths (frame 1, frame 2, ground-truth "
                                    f"flow), found {len(fields)}")
            if not fields[2].lower().endswith(FLOW_EXTENSIONS):
                raise PairListError(f"{where}: ground truth {fields[2]!r} is not a "
                                    f"{' / '.join(FLOW_EXTENSIONS)} file")
            paths = tuple(os.path.normpath(os.path.join(root, os.path.expanduser(p))) for p in fields)
            for listed, p in zip(fields, paths):
                if not os.path.isfile(p):
                    raise PairListError(f"{where}: no such file {listed!r} ({p})")
            try:
                sizes = [_frame_size(p) for p in paths[:2]]
            except ValueError as e:
                raise PairListError(f"{where}: {e}") from None
            if sizes[0] != sizes[1]:
                raise PairListError(f"{where}: the frames differ in size: {sizes[0][1]}x{sizes[0][0]} "
                                    f"and {sizes[1][1]}x{sizes[1][0]} (W x H)")
            self.pairs.append((number, tuple(fields), paths))
            self.sizes.append(tuple(int(v) for v in sizes[0]))
        if not self.pairs:
            raise PairListError(f"{self.path}: lists no pairs (one line per pair: frame 1, frame 2, "
                                "ground-truth flow)")

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"PairListSource({self.path!r}, len={len(self)})"

    def __getitem__(self, index: int) -> dict:
        from deq_flow_jax import io
        from deq_flow_jax.data.records import known_flow

        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.path}: index {index} out of range [0, {len(self)})")
        number, listed, (p1, p2, pf) = self.pairs[index]
        try:
            image1, image2 = io.read_image(p1), io.read_image(p2)
            flow, valid = _read_flow_file(pf)
        except (OSError, ValueError) as e:
            raise PairListError(f"{self.path}, line {number}: {e}") from None
        if image1.shape != image2.shape or flow.shape[:2] != image1.shape[:2]:
            raise PairListError(f"{self.path}, line {number}: sizes differ: frame 1 "
                                f"{image1.shape[1]}x{image1.shape[0]}, frame 2 "
                                f"{image2.shape[1]}x{image2.shape[0]}, flow "
                                f"{flow.shape[1]}x{flow.shape[0]} (W x H)")
        known = known_flow(flow, valid)
        if not known.any():
            raise PairListError(f"{self.path}, line {number}: {listed[2]!r} holds no known flow")
        flow = np.where(known[..., None], flow, 0.0).astype(np.float32)
        return {"image1": image1, "image2": image2, "flow": flow, "valid": known.astype(np.float32),
                "meta": {"dataset": "pairs", "scene": f"line {number}", "frame": None,
                         "id": listed[0], "files": list(listed)}}
